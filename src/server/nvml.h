// GPU memory and utilization from NVML, loaded at run time with
// dlopen("libnvidia-ml.so.1") (no link-time dependency on the driver). Without
// the library or a usable GPU (CPU machines, CI, a sandbox that blocks NVML's
// calls) available() is false, why_unavailable() says which call failed and
// read() returns nothing: the metrics are omitted.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "server/metrics.h"

namespace tandem::server {

class NvmlReader {
 public:
  // `library`: the NVML shared library to load (tests pass a fake one). The
  // constructor probes every GPU once, so a call that fails is named at start.
  explicit NvmlReader(const std::string& library = "libnvidia-ml.so.1");
  ~NvmlReader();
  NvmlReader(const NvmlReader&) = delete;
  NvmlReader& operator=(const NvmlReader&) = delete;

  bool available() const { return ok_; }
  const std::string& why_unavailable() const { return why_; }
  // "1 GPU (NVIDIA H100 80GB HBM3)" once available.
  const std::string& summary() const { return summary_; }
  // One entry per GPU whose memory could be read; a GPU whose utilization
  // query fails keeps its memory series (has_utilization = false). A failing
  // call is logged once (warning), never silently.
  std::vector<GpuStats> read() const;

 private:
  struct Api;
  std::string call_error(const char* call, int code) const;
  void warn_once(const std::string& what) const;

  void* lib_ = nullptr;
  Api* api_ = nullptr;
  bool ok_ = false;
  std::string why_;
  std::string summary_;
  mutable std::atomic<bool> warned_{false};
};

}  // namespace tandem::server
