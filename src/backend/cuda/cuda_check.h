// CUDA_CHECK / CUDA_CHECK_LAUNCH for the backend's host code: a CUDA error is a
// programming or device fault (CHECK fails with the call and the error string).
#pragma once

#include <cuda_runtime.h>

#include "common/check.h"

#define CUDA_CHECK(expr)                                                              \
  do {                                                                                \
    const cudaError_t tandem_err_ = (expr);                                           \
    CHECK_MSG(tandem_err_ == cudaSuccess, #expr << ": " << cudaGetErrorString(tandem_err_)); \
  } while (0)
// After a launch: configuration errors are reported at once, faults at the next sync.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
