// GPU memory and utilization from NVML, loaded at run time with
// dlopen("libnvidia-ml.so.1"). Without the driver library (CPU machines, CI)
// available() is false and read() returns nothing: the metrics are omitted.
#pragma once

#include <string>
#include <vector>

#include "server/metrics.h"

namespace tandem::server {

class NvmlReader {
 public:
  NvmlReader();
  ~NvmlReader();
  NvmlReader(const NvmlReader&) = delete;
  NvmlReader& operator=(const NvmlReader&) = delete;

  bool available() const { return ok_; }
  const std::string& why_unavailable() const { return why_; }
  std::vector<GpuStats> read() const;

 private:
  struct Api;
  void* lib_ = nullptr;
  Api* api_ = nullptr;
  bool ok_ = false;
  std::string why_;
};

}  // namespace tandem::server
