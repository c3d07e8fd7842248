// A kernel timeline without Nsight Systems (the GPU machine has none): a CUPTI
// injection library. The CUDA driver loads it into any process that sets
//   CUDA_INJECTION64_PATH=/path/libtandem_kernel_trace.so
//   TANDEM_KERNEL_TRACE=/path/trace.csv
// and every kernel that process runs (CUDA graph nodes included, one record
// each; programmatic dependent launch keeps its overlap: concurrent-kernel
// records only timestamp, they do not serialize) becomes a CSV row
//   "Start (ns)","Duration (ns)","Name",grid,block,regs,smem,graph_node
// with the columns scripts/gpu/trace_decode.sh reads from nsys' cuda_gpu_trace.
#include <cupti.h>
#include <cxxabi.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace {

constexpr size_t kBufferBytes = 8u << 20;
constexpr size_t kAlign = 8;

std::FILE* g_out = nullptr;
std::mutex g_mu;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kAlign, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

// A kernel name as C++ wrote it (template arguments and all), quoted for CSV.
void write_name(const char* mangled) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  const char* name = status == 0 && demangled != nullptr ? demangled : mangled;
  std::fputc('"', g_out);
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c == '"') std::fputc('"', g_out);  // CSV doubles a quote
    std::fputc(*c, g_out);
  }
  std::fputc('"', g_out);
  std::free(demangled);
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream_id, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mu);
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(ctx, stream_id, &dropped) == CUPTI_SUCCESS && dropped > 0)
    std::fprintf(stderr, "tandem_kernel_trace: %zu kernel records dropped (buffers full)\n", dropped);
  CUpti_Activity* record = nullptr;
  while (g_out != nullptr && cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    std::fprintf(g_out, "%llu,%llu,", static_cast<unsigned long long>(k->start),
                 static_cast<unsigned long long>(k->end - k->start));
    write_name(k->name != nullptr ? k->name : "?");
    std::fprintf(g_out, ",%dx%dx%d,%dx%dx%d,%u,%d,%llu\n", k->gridX, k->gridY, k->gridZ, k->blockX, k->blockY,
                 k->blockZ, k->registersPerThread, k->staticSharedMemory + k->dynamicSharedMemory,
                 static_cast<unsigned long long>(k->graphNodeId));
  }
  if (g_out != nullptr) std::fflush(g_out);
  std::free(buffer);
}

void flush_at_exit() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_out != nullptr) std::fclose(g_out);
  g_out = nullptr;
}

bool check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return true;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "tandem_kernel_trace: %s failed: %s\n", what, msg != nullptr ? msg : "?");
  return false;
}

}  // namespace

// Called by the CUDA driver at cuInit when CUDA_INJECTION64_PATH names this library.
extern "C" int InitializeInjection(void) {
  const char* path = std::getenv("TANDEM_KERNEL_TRACE");
  if (path == nullptr || *path == '\0') path = "kernel_trace.csv";
  g_out = std::fopen(path, "w");
  if (g_out == nullptr) {
    std::fprintf(stderr, "tandem_kernel_trace: cannot write %s: %s\n", path, std::strerror(errno));
    return 0;
  }
  std::fprintf(g_out, "\"Start (ns)\",\"Duration (ns)\",\"Name\",grid,block,regs,smem,graph_node\n");
  if (!check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks") ||
      !check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)")) {
    std::fclose(g_out);
    g_out = nullptr;
    return 0;
  }
  std::atexit(flush_at_exit);
  return 1;
}
