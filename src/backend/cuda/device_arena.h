// One up-front device allocation, carved into buffers (first fit, 256-byte
// aligned, neighbours merged on free). No cudaMalloc after start-up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace tandem::cuda {

class DeviceArena {
 public:
  DeviceArena() = default;
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // cudaMalloc of `bytes`; false (with the CUDA error text in *error) on failure.
  bool init(size_t bytes, const char** error);
  // nullptr when no free range is large enough.
  void* allocate(size_t bytes);
  void release(void* p);

  size_t capacity() const { return capacity_; }
  size_t used() const;

 private:
  char* base_ = nullptr;
  size_t capacity_ = 0;
  mutable std::mutex mutex_;
  std::map<size_t, size_t> free_;   // offset -> bytes, guarded by mutex_
  std::map<size_t, size_t> taken_;  // offset -> bytes, guarded by mutex_
};

}  // namespace tandem::cuda
