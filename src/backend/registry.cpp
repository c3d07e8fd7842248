// The only file with backend #ifdefs (DESIGN.md: one registry chooses backends).
#include "backend/registry.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#ifdef TANDEM_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_info.h"
#include "backend/cuda/overhead_probe.h"
#endif

namespace tandem {

std::vector<std::string> compiled_backends() {
  std::vector<std::string> names = {"cpu"};
#ifdef TANDEM_WITH_CUDA
  names.push_back("cuda");
#endif
  return names;
}

int cuda_device_count() {
#ifdef TANDEM_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

StatusOr<std::string> measure_cuda_overheads_json(int device) {
#ifdef TANDEM_WITH_CUDA
  cuda::OverheadProbeOptions options;
  options.device = device;
  return cuda::measure_overheads_json(options);
#else
  (void)device;
  return unavailable("this tandem was built without the CUDA backend; build with CUDA to measure overheads");
#endif
}

StatusOr<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options) {
#ifdef TANDEM_WITH_CUDA
  if (cuda::device_count() == 0) return unavailable("no CUDA device found");
  return cuda::create_cuda_backend(options);
#else
  (void)options;
  return unavailable("this build has no CUDA backend (configure with -DTANDEM_CUDA=ON)");
#endif
}

namespace {

StatusOr<std::unique_ptr<Backend>> create_cuda_backend(const BackendOptions& options) {
#ifdef TANDEM_WITH_CUDA
  if (cuda::device_count() == 0) return unavailable("--device cuda: no usable CUDA device found");
  CudaBackendOptions o;
  o.device = options.cuda_device;
  o.activation_dtype = options.cuda_activation_dtype;
  // Switches for same-run comparisons (docs/cuda.md): "0" is off, anything else on.
  auto env_flag = [](const char* name, bool* flag) {
    if (const char* g = std::getenv(name)) *flag = std::string(g) != "0";
  };
  env_flag("TANDEM_CUDA_GRAPHS", &o.graphs);
  env_flag("TANDEM_CUDA_PDL", &o.pdl);
  env_flag("TANDEM_CUDA_GEMV_PREFETCH", &o.gemv_prefetch);
  env_flag("TANDEM_CUDA_GEMV_SCALE_AHEAD", &o.gemv_scale_ahead);
  env_flag("TANDEM_CUDA_FUSED_SWIGLU", &o.fused_swiglu);
  if (const char* g = std::getenv("TANDEM_CUDA_FUSED_NORMS")) {  // 1: at every width (the width rule: unset)
    o.fused_norms = std::string(g) != "0";
    o.fused_norms_max_width = std::numeric_limits<int>::max();
  }
  env_flag("TANDEM_CUDA_FUSED_COMBINE", &o.attention_fused_combine);
  env_flag("TANDEM_CUDA_FUSED_ROPE", &o.attention_fused_rope);
  env_flag("TANDEM_CUDA_ATTN_LEAN_TAIL", &o.attention_lean_tail);
  env_flag("TANDEM_CUDA_ATTN_EARLY", &o.attention_early_loads);
  env_flag("TANDEM_CUDA_ATTN_EXACT_GROUP", &o.attention_exact_group);
  env_flag("TANDEM_CUDA_INT4_TC", &o.int4_tc_gemm);
  env_flag("TANDEM_CUDA_UPLOAD_SYNC", &o.upload_sync);
  if (const char* g = std::getenv("TANDEM_CUDA_DECODE_SPLITS")) o.decode_attention_max_splits = std::atoi(g);
  if (const char* g = std::getenv("TANDEM_CUDA_GEMV_RING")) o.gemv_ring = std::atoi(g);
  if (const char* g = std::getenv("TANDEM_CUDA_GEMV_RING_MAX_MB"))
    o.gemv_ring_max_bytes = static_cast<size_t>(std::max(0, std::atoi(g))) << 20;
  if (const char* g = std::getenv("TANDEM_CUDA_GEMV_MAX_PARTS")) o.gemv_max_parts = std::atoi(g);
  o.memory_bytes = options.cuda_memory_bytes != 0 ? options.cuda_memory_bytes
                                                  : cuda::free_memory_bytes(options.cuda_device) / 10 * 9;
  return cuda::create_cuda_backend(o);
#else
  return unavailable("--device cuda: this tandem was built without the CUDA backend (backends: cpu)");
#endif
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> create_backend(const std::string& device, const BackendOptions& options) {
  if (device == "cpu") return make_cpu_backend(options.cpu_threads, options.cpu_blas_prefill);
  if (device == "cuda") return create_cuda_backend(options);
  if (device == "auto") {
    auto cuda = create_cuda_backend(options);
    if (cuda.ok()) return cuda;
    return make_cpu_backend(options.cpu_threads, options.cpu_blas_prefill);
  }
  return invalid_argument("--device: unknown device '" + device + "' (expected cpu, cuda or auto)");
}

}  // namespace tandem
