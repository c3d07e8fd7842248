/* A stand-in for libnvidia-ml.so.1 with the entry points NvmlReader uses, so
 * its loading, probing and error paths are tested without a GPU. FAKE_NVML
 * (read at every call) picks the behaviour: "ok" (default), "init_fails",
 * "memory_fails" (v1 and v2), "memory_v1_fails" (only the v2 query answers),
 * "util_fails", "no_gpu". Two GPUs. */
#include <stdlib.h>
#include <string.h>

typedef struct { unsigned long long total, free, used; } Memory;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } MemoryV2;
typedef struct { unsigned int gpu, memory; } Utilization;

enum { kSuccess = 0, kNotSupported = 3, kNoPermission = 4, kDriverNotLoaded = 9 };

static int mode(const char* m) {
  const char* v = getenv("FAKE_NVML");
  return strcmp(v ? v : "ok", m) == 0;
}

int nvmlInit_v2(void) { return mode("init_fails") ? kDriverNotLoaded : kSuccess; }
int nvmlShutdown(void) { return kSuccess; }
const char* nvmlErrorString(int rc) {
  switch (rc) {
    case kNotSupported: return "Not Supported";
    case kNoPermission: return "Insufficient Permissions";
    case kDriverNotLoaded: return "Driver Not Loaded";
    default: return "Unknown Error";
  }
}
int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = mode("no_gpu") ? 0 : 2;
  return kSuccess;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void** dev) {
  if (i >= 2) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
  *dev = (void*)(unsigned long)(i + 1);
  return kSuccess;
}
int nvmlDeviceGetName(void* dev, char* name, unsigned int len) {
  const char* n = (unsigned long)dev == 1 ? "Fake GPU \"A\"" : "Fake GPU B";
  strncpy(name, n, len);
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo(void* dev, Memory* m) {
  if (mode("memory_fails") || mode("memory_v1_fails")) return kNoPermission;
  m->total = 80ull << 30;
  m->used = (unsigned long)dev << 30;
  m->free = m->total - m->used;
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo_v2(void* dev, MemoryV2* m) {
  if (mode("memory_fails") || m->version != (40u | (2u << 24))) return kNoPermission;
  m->total = 80ull << 30;
  m->reserved = 1ull << 20;
  m->used = ((unsigned long)dev << 30) + 7;
  m->free = m->total - m->used;
  return kSuccess;
}
int nvmlDeviceGetUtilizationRates(void* dev, Utilization* u) {
  if (mode("util_fails")) return kNotSupported;
  u->gpu = 40 + (unsigned int)(unsigned long)dev;
  u->memory = 10;
  return kSuccess;
}
