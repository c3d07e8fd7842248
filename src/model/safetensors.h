// Memory-mapped safetensors checkpoints: one file, or shards listed in
// model.safetensors.index.json. Headers are validated at open (length, JSON,
// dtypes, shapes vs byte ranges, ranges inside the file and not overlapping);
// every error names the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"

namespace tandem {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the file's data buffer
  uint64_t end = 0;
};

// One mapped .safetensors file. Views stay valid while the object lives.
class SafetensorsFile {
 public:
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const;
  // A host view of the tensor's bytes inside the mapping (ndim <= 4).
  TensorView view(const SafetensorsEntry& e) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data buffer
  std::map<std::string, SafetensorsEntry> entries_;
};

// All tensors of a checkpoint folder, by name.
class Checkpoint {
 public:
  // DIR/model.safetensors.index.json (shards), else DIR/model.safetensors, else
  // the single *.safetensors file in DIR.
  static StatusOr<std::unique_ptr<Checkpoint>> open(const std::string& dir);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // kNotFound naming the tensor and the folder when absent.
  StatusOr<TensorView> get(const std::string& name) const;
  // The file a tensor lives in (for messages).
  std::string file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Ref {
    const SafetensorsFile* file;
    const SafetensorsEntry* entry;
  };
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Ref> tensors_;
};

// Writes a safetensors file (tests, benchmarks, tandem synth). Tensors are
// written in the given order, data 8-byte aligned.
struct SafetensorsTensorData {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
Status write_safetensors(const std::string& path, const std::vector<SafetensorsTensorData>& tensors);

}  // namespace tandem
