#include "backend/cuda/int4_repack.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <thread>

#include "backend/cuda/int4_layout.h"

namespace tandem::cuda {
namespace {

constexpr int kAwqRev[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // nibble of column 8c + j

Status bad(const LinearWeight& w, const std::string& what) {
  return invalid_argument(w.name + ": " + what);
}

bool shape_is(const TensorView& t, std::initializer_list<int64_t> dims) {
  if (t.ndim != static_cast<int>(dims.size())) return false;
  int i = 0;
  for (int64_t d : dims) {
    if (t.shape[i++] != d) return false;
  }
  return true;
}

uint32_t read_u32(const TensorView& t, int64_t i) {
  uint32_t v;
  std::memcpy(&v, static_cast<const char*>(t.data) + 4 * i, 4);
  return v;
}

uint16_t to_act_bits(float v, DType act) { return act == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v); }

template <typename F>
void parallel_for(int64_t n, F&& f) {
  const int threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  if (n < 64 || threads == 1) {
    f(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int i = 0; i < threads; ++i) {
    const int64_t b = i * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&f, b, e] { f(b, e); });
  }
  for (auto& t : pool) t.join();
}

}  // namespace

StatusOr<Int4Packed> repack_int4(const LinearWeight& w, DType act_type) {
  if (w.format != WeightFormat::kAwqGemm && w.format != WeightFormat::kGptq)
    return bad(w, "not an int4 layer");
  if (act_type != DType::kF16 && act_type != DType::kBF16)
    return bad(w, "int4 layers need fp16 or bf16 activations");
  const int64_t K = w.num_in, N = w.num_out, G = w.group_size;
  if (K <= 0 || N <= 0 || G <= 0) return bad(w, "empty shape or group size");
  if (K % G != 0) return bad(w, "group size " + std::to_string(G) + " does not divide K=" + std::to_string(K));
  if (K % kInt4TileK != 0 || N % kInt4TileN != 0 || G % 32 != 0)
    return bad(w, "CUDA int4 kernels need K % 128 == 0, N % 8 == 0 and group size % 32 == 0 (K=" +
                      std::to_string(K) + ", N=" + std::to_string(N) + ", G=" + std::to_string(G) + ")");
  const int64_t ng = K / G;
  const bool awq = w.format == WeightFormat::kAwqGemm;
  if (w.qweight.dtype != DType::kI32 ||
      !(awq ? shape_is(w.qweight, {K, N / 8}) : shape_is(w.qweight, {K / 8, N})))
    return bad(w, "qweight has shape " + w.qweight.shape_string() + " " + dtype_name(w.qweight.dtype));
  if (!w.qzeros.empty() && (w.qzeros.dtype != DType::kI32 || !shape_is(w.qzeros, {ng, N / 8})))
    return bad(w, "qzeros has shape " + w.qzeros.shape_string());
  if (!is_float_dtype(w.scales.dtype) || !shape_is(w.scales, {ng, N}))
    return bad(w, "scales has shape " + w.scales.shape_string());

  Int4Packed out;
  out.K = static_cast<int>(K);
  out.N = static_cast<int>(N);
  out.group_size = static_cast<int>(G);

  // Act-order: sort input rows by group; every group must then hold exactly G rows.
  std::vector<int32_t> perm;
  if (!awq && !w.g_idx.empty()) {
    if (w.g_idx.dtype != DType::kI32 || !shape_is(w.g_idx, {K}))
      return bad(w, "g_idx has shape " + w.g_idx.shape_string());
    const int32_t* g = w.g_idx.as<const int32_t>();
    bool trivial = true;
    for (int64_t k = 0; k < K; ++k) {
      if (g[k] < 0 || g[k] >= ng) return bad(w, "g_idx[" + std::to_string(k) + "] out of range");
      trivial = trivial && g[k] == k / G;
    }
    if (!trivial) {
      perm.resize(K);
      std::iota(perm.begin(), perm.end(), 0);
      std::stable_sort(perm.begin(), perm.end(), [g](int32_t a, int32_t b) { return g[a] < g[b]; });
      for (int64_t k = 0; k < K; ++k) {
        if (g[perm[k]] != k / G) return bad(w, "g_idx groups are not all of size " + std::to_string(G));
      }
    }
  }

  // Quantized value (0..15) of original row k, column n.
  auto qval = [&](int64_t k, int64_t n) -> uint32_t {
    if (awq) return (read_u32(w.qweight, k * (N / 8) + n / 8) >> (4 * kAwqRev[n % 8])) & 0xF;
    return (read_u32(w.qweight, (k / 8) * N + n) >> (4 * (k % 8))) & 0xF;
  };
  auto zval = [&](int64_t g, int64_t n) -> int {
    if (w.qzeros.empty()) return 8;
    const uint32_t word = read_u32(w.qzeros, g * (N / 8) + n / 8);
    const int nib = awq ? kAwqRev[n % 8] : static_cast<int>(n % 8);
    return static_cast<int>((word >> (4 * nib)) & 0xF) + w.zero_offset;
  };

  const int64_t num_ktiles = K / kInt4TileK, num_ntiles = N / kInt4TileN;
  out.qweight.assign(static_cast<size_t>(K * N / 8), 0u);
  parallel_for(num_ntiles, [&](int64_t nb, int64_t ne) {
    for (int64_t nt = nb; nt < ne; ++nt) {
      for (int64_t kt = 0; kt < num_ktiles; ++kt) {
        uint32_t* tile = out.qweight.data() + (nt * num_ktiles + kt) * kInt4TileWords;
        for (int lane = 0; lane < 32; ++lane) {
          const int64_t n = nt * kInt4TileN + lane / 4;
          const int quad = lane % 4;
          for (int wd = 0; wd < 4; ++wd) {
            uint32_t word = 0;
            for (int p = 0; p < 4; ++p) {
              const int step = 2 * wd + p / 2;
              const int r = step * 16 + 2 * quad + (p % 2) * 8;
              for (int second = 0; second < 2; ++second) {
                const int64_t k = kt * kInt4TileK + r + second;
                const int64_t src_k = perm.empty() ? k : perm[k];
                word |= qval(src_k, n) << (4 * (p + 4 * second));
              }
            }
            tile[lane * 4 + wd] = word;
          }
        }
      }
    }
  });

  const float magic = act_type == DType::kBF16 ? 128.f : 1024.f;
  out.scale_zero.assign(static_cast<size_t>(N * ng * 2), 0);
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      const int z = zval(g, n);
      if (z < 0 || z > 16) return bad(w, "zero point " + std::to_string(z) + " out of range");
      out.scale_zero[g * N + n] = to_act_bits(load_as_f32(w.scales.data, w.scales.dtype, g * N + n), act_type);
      out.scale_zero[N * ng + n * ng + g] = to_act_bits(magic + static_cast<float>(z), act_type);
    }
  }
  out.perm = std::move(perm);
  return out;
}

float int4_packed_value(const Int4Packed& p, DType act_type, int64_t k, int64_t n) {
  const Int4Position pos = int4_position(k, n, p.K);
  const uint32_t q = (p.qweight[pos.word] >> (4 * pos.nibble)) & 0xF;
  const int64_t ng = p.K / p.group_size, g = k / p.group_size;
  auto f = [act_type](uint16_t b) { return act_type == DType::kBF16 ? bf16_to_f32(b) : f16_to_f32(b); };
  const float scale = f(p.scale_zero[g * p.N + n]);
  const float zero = f(p.scale_zero[p.N * ng + n * ng + g]) - (act_type == DType::kBF16 ? 128.f : 1024.f);
  return (static_cast<float>(q) - zero) * scale;
}

}  // namespace tandem::cuda
