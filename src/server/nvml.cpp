#include "server/nvml.h"

#include <dlfcn.h>

#include "common/log.h"

namespace tandem::server {

// The few NVML entry points used, with their C ABI (nvml.h is not needed).
struct NvmlReader::Api {
  using Device = void*;
  struct Memory {  // nvmlMemory_t
    unsigned long long total, free, used;
  };
  struct MemoryV2 {  // nvmlMemory_v2_t (drivers >= 510)
    unsigned int version;
    unsigned long long total, reserved, free, used;
  };
  static_assert(sizeof(MemoryV2) == 40, "nvmlMemory_v2_t layout");
  struct Utilization {  // nvmlUtilization_t
    unsigned int gpu, memory;
  };
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  const char* (*error_string)(int) = nullptr;
  int (*count)(unsigned int*) = nullptr;
  int (*handle)(unsigned int, Device*) = nullptr;
  int (*memory)(Device, Memory*) = nullptr;
  int (*memory_v2)(Device, MemoryV2*) = nullptr;  // optional
  int (*utilization)(Device, Utilization*) = nullptr;
  int (*name)(Device, char*, unsigned int) = nullptr;
};

namespace {

// NVML_STRUCT_VERSION(Memory, 2)
constexpr unsigned int kMemoryV2Version = 40u | (2u << 24);

// Where container runtimes put the driver's libraries when the loader's
// cache does not know them (nvidia-container-toolkit on Kubernetes, WSL).
constexpr const char* kDriverDirs[] = {"/usr/lib/x86_64-linux-gnu/", "/usr/lib64/", "/usr/local/nvidia/lib64/",
                                       "/usr/lib/wsl/lib/"};

template <typename Fn>
void bind(void* lib, Fn* fn, std::initializer_list<const char*> names, std::string* missing) {
  for (const char* n : names) {
    if (void* p = dlsym(lib, n)) {
      *fn = reinterpret_cast<Fn>(p);
      return;
    }
  }
  if (missing) *missing += std::string(missing->empty() ? "" : ", ") + *names.begin();
}

}  // namespace

NvmlReader::NvmlReader(const std::string& library) {
  std::string dl_error;
  lib_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib_) {
    const char* e = dlerror();
    dl_error = e ? e : "unknown dlopen error";
    if (library.find('/') == std::string::npos) {
      for (const char* dir : kDriverDirs) {
        if ((lib_ = dlopen((std::string(dir) + library).c_str(), RTLD_NOW | RTLD_LOCAL))) break;
      }
    }
  }
  if (!lib_) {
    why_ = "cannot load " + library + " (" + dl_error + ")";
    return;
  }
  api_ = new Api{};
  std::string missing;
  bind(lib_, &api_->init, {"nvmlInit_v2", "nvmlInit"}, &missing);
  bind(lib_, &api_->shutdown, {"nvmlShutdown"}, &missing);
  bind(lib_, &api_->error_string, {"nvmlErrorString"}, &missing);
  bind(lib_, &api_->count, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"}, &missing);
  bind(lib_, &api_->handle, {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"}, &missing);
  bind(lib_, &api_->memory, {"nvmlDeviceGetMemoryInfo"}, &missing);
  bind(lib_, &api_->utilization, {"nvmlDeviceGetUtilizationRates"}, &missing);
  bind(lib_, &api_->name, {"nvmlDeviceGetName"}, &missing);
  bind(lib_, &api_->memory_v2, {"nvmlDeviceGetMemoryInfo_v2"}, nullptr);
  if (!missing.empty()) {
    why_ = library + " lacks " + missing;
    return;
  }
  if (int rc = api_->init(); rc != 0) {
    why_ = call_error("nvmlInit", rc);
    return;
  }
  ok_ = true;
  // Probe once, so a call that fails everywhere is named now rather than
  // leaving the series silently absent.
  unsigned int n = 0;
  if (int rc = api_->count(&n); rc != 0 || n == 0) {
    why_ = rc != 0 ? call_error("nvmlDeviceGetCount", rc) : "NVML sees no GPU";
  } else {
    auto gpus = read();
    if (gpus.empty()) {
      why_ = "no GPU's memory could be read through NVML";
    } else {
      summary_ = std::to_string(gpus.size()) + " GPU" + (gpus.size() > 1 ? "s" : "") + " (" + gpus[0].name + ")";
      warned_ = false;  // the probe's warning, if any, may repeat once in service
      return;
    }
  }
  api_->shutdown();
  ok_ = false;
}

NvmlReader::~NvmlReader() {
  if (ok_) api_->shutdown();
  delete api_;
  if (lib_) dlclose(lib_);
}

std::string NvmlReader::call_error(const char* call, int code) const {
  const char* text = api_ && api_->error_string ? api_->error_string(code) : nullptr;
  return std::string(call) + " failed: " + (text ? text : "error") + " (" + std::to_string(code) + ")";
}

void NvmlReader::warn_once(const std::string& what) const {
  if (!warned_.exchange(true)) {
    TANDEM_LOG(kWarning) << "GPU metrics: " << what << " (further NVML errors not logged)";
  }
}

std::vector<GpuStats> NvmlReader::read() const {
  std::vector<GpuStats> out;
  if (!ok_) return out;
  unsigned int n = 0;
  if (int rc = api_->count(&n); rc != 0) {
    warn_once(call_error("nvmlDeviceGetCount", rc));
    return out;
  }
  for (unsigned int i = 0; i < n; ++i) {
    const std::string gpu = "GPU " + std::to_string(i) + ": ";
    Api::Device dev = nullptr;
    if (int rc = api_->handle(i, &dev); rc != 0) {
      warn_once(gpu + call_error("nvmlDeviceGetHandleByIndex", rc));
      continue;
    }
    GpuStats g;
    g.index = static_cast<int>(i);
    char name[96] = {0};
    if (api_->name(dev, name, sizeof name - 1) == 0) g.name = name;
    Api::Memory mem{};
    if (int rc = api_->memory(dev, &mem); rc == 0) {
      g.memory_used_bytes = mem.used;
      g.memory_total_bytes = mem.total;
    } else {
      // Some drivers and sandboxes answer only the versioned query.
      Api::MemoryV2 m2{};
      m2.version = kMemoryV2Version;
      const int rc2 = api_->memory_v2 ? api_->memory_v2(dev, &m2) : rc;
      if (rc2 != 0) {
        warn_once(gpu + call_error("nvmlDeviceGetMemoryInfo", rc));
        continue;
      }
      g.memory_used_bytes = m2.used;
      g.memory_total_bytes = m2.total;
    }
    Api::Utilization util{};
    if (int rc = api_->utilization(dev, &util); rc == 0) {
      g.utilization_ratio = util.gpu / 100.0;
    } else {
      g.has_utilization = false;
      warn_once(gpu + call_error("nvmlDeviceGetUtilizationRates", rc));
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace tandem::server
