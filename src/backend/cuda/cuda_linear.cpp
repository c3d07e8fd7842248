// CudaLinear from a checkpoint (repack_int4 + upload) or drawn in place.
#include "backend/cuda/cuda_linear.h"

#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/int4_repack.h"
#include "backend/random_weights.h"

namespace tandem::cuda {

StatusOr<std::unique_ptr<PreparedLinear>> prepare_cuda_linear(Backend& be, const LinearWeight& w, DType act) {
  auto out = std::make_unique<CudaLinear>();
  out->N = w.num_out;
  out->K = w.num_in;
  out->dtype = act;
  if (!w.bias.empty()) {
    if (w.bias.numel() != w.num_out || !is_float_dtype(w.bias.dtype))
      return invalid_argument(w.name + ": bias has shape " + w.bias.shape_string());
    ASSIGN_OR_RETURN(DeviceTensor b, be.upload(w.bias, act));
    out->bias = std::move(b.buffer);
  }
  if (w.format == WeightFormat::kDense) {
    if (w.weight.ndim != 2 || w.weight.shape[0] != w.num_out || w.weight.shape[1] != w.num_in ||
        !is_float_dtype(w.weight.dtype))
      return invalid_argument(w.name + ": weight has shape " + w.weight.shape_string() +
                              ", expected [" + std::to_string(w.num_out) + ", " +
                              std::to_string(w.num_in) + "]");
    ASSIGN_OR_RETURN(DeviceTensor t, be.upload(w.weight, act));
    out->weight = std::move(t.buffer);
    return std::unique_ptr<PreparedLinear>(std::move(out));
  }
  ASSIGN_OR_RETURN(Int4Packed packed, repack_int4(w, act));
  out->int4 = true;
  out->group_size = packed.group_size;
  ASSIGN_OR_RETURN(out->qweight, be.allocate(packed.qweight.size() * 4));
  be.copy_host_to_device(out->qweight.data(), packed.qweight.data(), packed.qweight.size() * 4);
  ASSIGN_OR_RETURN(out->scale_zero, be.allocate(packed.scale_zero.size() * 2));
  be.copy_host_to_device(out->scale_zero.data(), packed.scale_zero.data(), packed.scale_zero.size() * 2);
  if (!packed.perm.empty()) {
    ASSIGN_OR_RETURN(out->perm, be.allocate(packed.perm.size() * 4));
    be.copy_host_to_device(out->perm.data(), packed.perm.data(), packed.perm.size() * 4);
  }
  return std::unique_ptr<PreparedLinear>(std::move(out));
}

// The prepared layout drawn in place (same value distribution as the default's
// host checkpoint + repack: random nibbles stay uniform under any reordering).
StatusOr<std::unique_ptr<PreparedLinear>> prepare_random_cuda_linear(Backend& be, const LinearWeight& w, DType act,
                                                                     uint64_t seed, cudaStream_t stream) {
  auto out = std::make_unique<CudaLinear>();
  const int64_t N = w.num_out, K = w.num_in, G = w.group_size;
  out->N = N;
  out->K = K;
  out->dtype = act;
  const float a = random_weight_bound(K);
  auto uniform = [&](DeviceBuffer* buf, int64_t n, float lo, float hi, uint64_t part) -> Status {
    ASSIGN_OR_RETURN(*buf, be.allocate(n * dtype_size(act)));
    be.fill_random_uniform(TensorView(buf->data(), act, {n}), lo, hi, random_subseed(seed, part));
    return ok_status();
  };
  if (w.bias.ndim > 0) RETURN_IF_ERROR(uniform(&out->bias, N, -a, a, kPartBias));
  if (w.format == WeightFormat::kDense) {
    RETURN_IF_ERROR(uniform(&out->weight, N * K, -a, a, kPartWeight));
    return std::unique_ptr<PreparedLinear>(std::move(out));
  }
  // The checks repack_int4 makes for a checkpoint.
  if (G <= 0 || K % G != 0 || K % kInt4TileK != 0 || N % kInt4TileN != 0 || G % 32 != 0)
    return invalid_argument(w.name + ": CUDA int4 kernels need K % 128 == 0, N % 8 == 0, group size % 32 == 0 "
                            "and dividing K (K=" + std::to_string(K) + ", N=" + std::to_string(N) +
                            ", G=" + std::to_string(G) + ")");
  const int64_t ng = K / G;
  out->int4 = true;
  out->group_size = static_cast<int>(G);
  ASSIGN_OR_RETURN(out->qweight, be.allocate(K * N / 8 * 4));
  launch_random_fill({out->qweight.data(), K * N / 8, RandomFillMode::kNibbles, ElemType::kF32, 0.f, 0.f, 0.f, 0, 15,
                      random_subseed(seed, kPartWeight)}, stream);
  CUDA_CHECK_LAUNCH();
  // scales [K/G][N], then zeros [N][K/G] stored as magic + zero (int4_layout.h).
  ASSIGN_OR_RETURN(out->scale_zero, be.allocate(N * ng * 2 * 2));
  be.fill_random_uniform(TensorView(out->scale_zero.data(), act, {ng * N}), random_scale_lo(K), random_scale_hi(K),
                      random_subseed(seed, kPartScales));
  const float magic = act == DType::kBF16 ? 128.f : 1024.f;
  launch_random_fill({static_cast<char*>(out->scale_zero.data()) + N * ng * 2, N * ng, RandomFillMode::kInteger,
                      elem(act), 0.f, 0.f, magic, kRandomZeroLo, kRandomZeroHi, random_subseed(seed, kPartZeros)},
                     stream);
  CUDA_CHECK_LAUNCH();
  if (w.format == WeightFormat::kGptq && w.g_idx.ndim > 0) {
    const std::vector<int32_t> perm = random_act_order_perm(K, random_subseed(seed, kPartGroupIndex));
    ASSIGN_OR_RETURN(out->perm, be.allocate(K * 4));
    be.copy_host_to_device(out->perm.data(), perm.data(), K * 4);
  }
  return std::unique_ptr<PreparedLinear>(std::move(out));
}

}  // namespace tandem::cuda
