// The only file with backend #ifdefs (DESIGN.md: one registry chooses backends).
#include "backend/registry.h"

#ifdef TANDEM_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_info.h"
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

StatusOr<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options) {
#ifdef TANDEM_WITH_CUDA
  if (cuda::device_count() == 0) return unavailable("no CUDA device found");
  return cuda::create_cuda_backend(options);
#else
  (void)options;
  return unavailable("this build has no CUDA backend (configure with -DTANDEM_CUDA=ON)");
#endif
}

}  // namespace tandem
