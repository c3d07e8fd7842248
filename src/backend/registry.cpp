// The only file with backend #ifdefs (DESIGN.md: one registry chooses backends).
#include "backend/registry.h"

#ifdef TANDEM_WITH_CUDA
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

}  // namespace tandem
