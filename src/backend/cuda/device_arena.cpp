#include "backend/cuda/device_arena.h"

#include <cuda_runtime.h>

#include "common/check.h"

namespace tandem::cuda {

DeviceArena::~DeviceArena() {
  if (base_ != nullptr) cudaFree(base_);
}

bool DeviceArena::init(size_t bytes, const char** error) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    *error = cudaGetErrorString(err);
    return false;
  }
  base_ = static_cast<char*>(p);
  capacity_ = bytes;
  free_[0] = bytes;
  return true;
}

void* DeviceArena::allocate(size_t bytes) {
  const size_t need = (bytes + 255) / 256 * 256;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const size_t off = it->first, have = it->second;
    free_.erase(it);
    if (have > need) free_[off + need] = have - need;
    taken_[off] = need;
    return base_ + off;
  }
  return nullptr;
}

void DeviceArena::release(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t off = static_cast<size_t>(static_cast<char*>(p) - base_);
  auto t = taken_.find(off);
  CHECK(t != taken_.end());
  size_t start = off, len = t->second;
  taken_.erase(t);
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + len) {  // merge with the range after
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {  // merge with the range before
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = len;
}

size_t DeviceArena::used() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [off, len] : taken_) n += len;
  return n;
}

}  // namespace tandem::cuda
