#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/check.h"

namespace tandem {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

Status parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size,
                   SafetensorsEntry* out) {
  auto bad = [&](const std::string& what) { return invalid_argument(path + ": tensor '" + name + "': " + what); };
  if (!v.is_object()) return bad("header entry is not an object");
  if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("missing 'dtype'");
  const std::string dt = v["dtype"].get<std::string>();
  auto dtype = dtype_from_safetensors(dt);
  if (!dtype) return bad("unsupported dtype '" + dt + "'");
  if (!v.contains("shape") || !v["shape"].is_array()) return bad("missing 'shape'");
  if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
    return bad("'data_offsets' must be [begin, end]");
  out->name = name;
  out->dtype = *dtype;
  uint64_t numel = 1;
  for (const auto& d : v["shape"]) {
    if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
      return bad("shape " + v["shape"].dump() + " has a non-integer or negative dimension");
    const uint64_t x = d.get<uint64_t>();
    if (x != 0 && numel > (1ull << 62) / x) return bad("shape " + v["shape"].dump() + " is too large");
    numel *= x;
    out->shape.push_back(static_cast<int64_t>(x));
  }
  if (out->shape.size() > static_cast<size_t>(kMaxTensorDims))
    return bad("has " + std::to_string(out->shape.size()) + " dimensions (at most 4 supported)");
  const json& off = v["data_offsets"];
  for (const auto& o : off)
    if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
      return bad("data_offsets " + off.dump() + " must be non-negative integers");
  out->begin = off[0].get<uint64_t>();
  out->end = off[1].get<uint64_t>();
  if (out->begin > out->end) return bad("data_offsets " + off.dump() + " end before begin");
  if (out->end > data_size)
    return out_of_range(path + ": tensor '" + name + "': data_offsets " + off.dump() +
                        " out of range (data buffer is " + std::to_string(data_size) + " bytes)");
  const uint64_t want = numel * dtype_size(*dtype);
  if (out->end - out->begin != want)
    return bad("dtype " + dt + " and shape " + v["shape"].dump() + " need " + std::to_string(want) +
               " bytes but data_offsets " + off.dump() + " span " + std::to_string(out->end - out->begin));
  return ok_status();
}

}  // namespace

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return not_found(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return not_found(path + ": cannot stat");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return invalid_argument(path + ": truncated: " + std::to_string(size) +
                            " bytes, smaller than the 8-byte header length");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return internal_error(path + ": mmap failed (" + std::strerror(errno) + ")");
  f->map_ = map;
  f->map_size_ = size;
  const uint8_t* base = static_cast<const uint8_t*>(map);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(base[i]) << (8 * i);
  if (header_len > size - 8)
    return out_of_range(path + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                        std::to_string(size) + " bytes; truncated?)");
  if (header_len > kMaxHeaderBytes)
    return invalid_argument(path + ": header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
  f->data_ = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  json header = json::parse(base + 8, base + 8 + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return invalid_argument(path + ": header is not a JSON object");
  std::vector<const SafetensorsEntry*> by_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    SafetensorsEntry e;
    RETURN_IF_ERROR(parse_entry(path, it.key(), it.value(), data_size, &e));
    f->entries_.emplace(it.key(), std::move(e));
  }
  for (const auto& [name, e] : f->entries_)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      return invalid_argument(path + ": tensor '" + by_offset[i]->name + "' data_offsets [" +
                              std::to_string(by_offset[i]->begin) + ", " + std::to_string(by_offset[i]->end) +
                              ") overlap tensor '" + by_offset[i - 1]->name + "' [" +
                              std::to_string(by_offset[i - 1]->begin) + ", " +
                              std::to_string(by_offset[i - 1]->end) + ")");
  }
  return f;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

TensorView SafetensorsFile::view(const SafetensorsEntry& e) const {
  TensorView v;
  v.data = const_cast<uint8_t*>(data_ + e.begin);
  v.dtype = e.dtype;
  v.ndim = static_cast<int>(e.shape.size());
  for (int i = 0; i < v.ndim; ++i) v.shape[i] = e.shape[i];
  if (v.ndim == 0) {  // a scalar: one element
    v.ndim = 1;
    v.shape[0] = 1;
  }
  return v;
}

StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& dir) {
  auto ck = std::make_unique<Checkpoint>();
  ck->dir_ = dir;
  const fs::path root(dir);
  const fs::path index = root / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    std::ifstream in(index);
    std::ostringstream os;
    os << in.rdbuf();
    json j = json::parse(os.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return invalid_argument(index.string() + ": expected a JSON object with a 'weight_map' object");
    std::map<std::string, size_t> shard_ids;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        return invalid_argument(index.string() + ": weight_map entry for '" + it.key() + "' is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..")
        return invalid_argument(index.string() + ": shard name '" + shard + "' must be a plain file name");
      auto sid = shard_ids.find(shard);
      if (sid == shard_ids.end()) {
        const fs::path p = root / shard;
        if (!fs::exists(p, ec))
          return not_found(p.string() + ": shard missing (listed in model.safetensors.index.json for tensor '" +
                           it.key() + "')");
        ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(p.string()));
        sid = shard_ids.emplace(shard, ck->files_.size()).first;
        ck->files_.push_back(std::move(file));
      }
      const SafetensorsFile* file = ck->files_[sid->second].get();
      const SafetensorsEntry* e = file->find(it.key());
      if (e == nullptr)
        return not_found(file->path() + ": tensor '" + it.key() + "' listed in the index is not in this shard");
      ck->tensors_[it.key()] = Ref{file, e};
    }
    return ck;
  }
  fs::path single = root / "model.safetensors";
  if (!fs::exists(single, ec)) {
    std::vector<fs::path> found;
    if (fs::is_directory(root, ec))
      for (const auto& de : fs::directory_iterator(root, ec))
        if (de.path().extension() == ".safetensors") found.push_back(de.path());
    if (found.size() != 1)
      return not_found(dir + ": no model.safetensors or model.safetensors.index.json" +
                       (found.empty() ? std::string() : " (and several *.safetensors files without an index)"));
    single = found[0];
  }
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(single.string()));
  ck->files_.push_back(std::move(file));
  for (const auto& [name, e] : ck->files_[0]->entries()) ck->tensors_[name] = Ref{ck->files_[0].get(), &e};
  return ck;
}

StatusOr<TensorView> Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return not_found(dir_ + ": tensor '" + name + "' not found in the checkpoint");
  return it->second.file->view(*it->second.entry);
}

std::string Checkpoint::file_of(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? dir_ : it->second.file->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, ref] : tensors_) out.push_back(name);
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsTensorData>& tensors) {
  json header = json::object();
  uint64_t offset = 0;
  std::vector<uint64_t> starts;
  for (const auto& t : tensors) {
    offset = (offset + 7) & ~uint64_t{7};
    starts.push_back(offset);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return not_found(path + ": cannot create");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  uint64_t pos = 0;
  const std::vector<char> pad(8, 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.write(pad.data(), static_cast<std::streamsize>(starts[i] - pos));
    out.write(reinterpret_cast<const char*>(tensors[i].bytes.data()),
              static_cast<std::streamsize>(tensors[i].bytes.size()));
    pos = starts[i] + tensors[i].bytes.size();
  }
  if (!out) return internal_error(path + ": write failed");
  return ok_status();
}

}  // namespace tandem
