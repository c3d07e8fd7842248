#include "server/nvml.h"

#include <dlfcn.h>

namespace tandem::server {

// The few NVML entry points used, with their C ABI (nvml.h is not needed).
struct NvmlReader::Api {
  using Device = void*;
  struct Memory {
    unsigned long long total, free, used;
  };
  struct Utilization {
    unsigned int gpu, memory;
  };
  int (*init)();
  int (*shutdown)();
  int (*count)(unsigned int*);
  int (*handle)(unsigned int, Device*);
  int (*memory)(Device, Memory*);
  int (*utilization)(Device, Utilization*);
  int (*name)(Device, char*, unsigned int);
};

NvmlReader::NvmlReader() {
  lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib_) {
    why_ = "libnvidia-ml.so.1 not found";
    return;
  }
  api_ = new Api{};
  auto sym = [&](const char* name) { return dlsym(lib_, name); };
  api_->init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
  api_->shutdown = reinterpret_cast<int (*)()>(sym("nvmlShutdown"));
  api_->count = reinterpret_cast<int (*)(unsigned int*)>(sym("nvmlDeviceGetCount_v2"));
  api_->handle = reinterpret_cast<int (*)(unsigned int, Api::Device*)>(sym("nvmlDeviceGetHandleByIndex_v2"));
  api_->memory = reinterpret_cast<int (*)(Api::Device, Api::Memory*)>(sym("nvmlDeviceGetMemoryInfo"));
  api_->utilization = reinterpret_cast<int (*)(Api::Device, Api::Utilization*)>(sym("nvmlDeviceGetUtilizationRates"));
  api_->name = reinterpret_cast<int (*)(Api::Device, char*, unsigned int)>(sym("nvmlDeviceGetName"));
  if (!api_->init || !api_->shutdown || !api_->count || !api_->handle || !api_->memory || !api_->utilization ||
      !api_->name) {
    why_ = "libnvidia-ml.so.1 lacks an expected symbol";
    return;
  }
  if (api_->init() != 0) {
    why_ = "nvmlInit failed (no driver or no GPU)";
    api_->shutdown = nullptr;
    return;
  }
  ok_ = true;
}

NvmlReader::~NvmlReader() {
  if (ok_ && api_->shutdown) api_->shutdown();
  delete api_;
  if (lib_) dlclose(lib_);
}

std::vector<GpuStats> NvmlReader::read() const {
  std::vector<GpuStats> out;
  if (!ok_) return out;
  unsigned int n = 0;
  if (api_->count(&n) != 0) return out;
  for (unsigned int i = 0; i < n; ++i) {
    Api::Device dev = nullptr;
    if (api_->handle(i, &dev) != 0) continue;
    GpuStats g;
    g.index = static_cast<int>(i);
    char name[96] = {0};
    if (api_->name(dev, name, sizeof name - 1) == 0) g.name = name;
    Api::Memory mem{};
    if (api_->memory(dev, &mem) != 0) continue;
    g.memory_used_bytes = mem.used;
    g.memory_total_bytes = mem.total;
    Api::Utilization util{};
    if (api_->utilization(dev, &util) == 0) g.utilization_ratio = util.gpu / 100.0;
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace tandem::server
