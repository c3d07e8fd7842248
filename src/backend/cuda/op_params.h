// The kernels' parameter structs (kernels.h) from the backend ops' views
// (backend.h), checking the dtypes and shapes the kernels assume.
#pragma once

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {

// A RoPE op (no cache write); act: the backend's activation dtype.
RopeKernelParams rope_kernel_params(const RopeParams& p, DType act);
// The same with the K/V cache write of the rotated K and of V.
RopeKernelParams rope_kv_kernel_params(const RopeParams& p, const TensorView& v, const TensorView& slot_mapping,
                                       const KvCacheView& cache, DType act);
// The fields both attention launchers take straight from the op's parameters.
AttnKernelParams attention_kernel_params(const AttentionParams& a, int splits, DType act);

}  // namespace tandem::cuda
