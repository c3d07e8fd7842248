#include "backend/random_weights.h"

#include <algorithm>
#include <numeric>
#include <thread>

#include "common/check.h"

namespace tandem {
namespace {

// f(begin, end) over [0, n) on all cores when n is large.
template <typename F>
void parallel_range(int64_t n, F&& f) {
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), 64));
  if (n < (int64_t{1} << 20) || threads == 1) {
    f(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int64_t b = 0; b < n; b += chunk) pool.emplace_back([&f, b, e = std::min(n, b + chunk)] { f(b, e); });
  for (auto& t : pool) t.join();
}

}  // namespace

void random_uniform_host(void* dst, DType dtype, int64_t n, float lo, float hi, uint64_t seed) {
  CHECK(is_float_dtype(dtype));
  parallel_range(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) store_from_f32(dst, dtype, i, lo + (hi - lo) * random_unit(seed, i));
  });
}

void random_nibbles_host(uint32_t* dst, int64_t n_words, int lo, int hi, uint64_t seed) {
  parallel_range(n_words, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = random_nibble_word(seed, i, lo, hi);
  });
}

std::vector<int32_t> random_act_order_perm(int64_t k, uint64_t seed) {
  std::vector<int32_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t i = k - 1; i > 0; --i) {  // Fisher-Yates from the counter stream
    const int64_t j = static_cast<int64_t>(random_bits64(seed, i) % static_cast<uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

void random_group_index_host(int32_t* g_idx, int64_t k, int group_size, uint64_t seed) {
  const std::vector<int32_t> perm = random_act_order_perm(k, seed);
  for (int64_t i = 0; i < k; ++i) g_idx[perm[i]] = static_cast<int32_t>(i / group_size);
}

RandomLinearHost random_linear_host(const LinearWeight& spec, uint64_t seed, bool symmetric) {
  RandomLinearHost r;
  r.weight = spec;
  LinearWeight& w = r.weight;
  const int64_t k = spec.num_in;
  auto alloc = [&](TensorView* v) {
    r.storage.emplace_back(v->nbytes());
    v->data = r.storage.back().data();
  };
  const float a = random_weight_bound(k);
  if (spec.bias.ndim > 0) {
    alloc(&w.bias);
    random_uniform_host(w.bias.data, w.bias.dtype, w.bias.numel(), -a, a, random_subseed(seed, kPartBias));
  }
  if (spec.format == WeightFormat::kDense) {
    alloc(&w.weight);
    random_uniform_host(w.weight.data, w.weight.dtype, w.weight.numel(), -a, a, random_subseed(seed, kPartWeight));
    return r;
  }
  alloc(&w.qweight);
  random_nibbles_host(w.qweight.as<uint32_t>(), w.qweight.numel(), 0, 15, random_subseed(seed, kPartWeight));
  // The zero the kernels see is stored + zero_offset: keep it in [5, 10] (8 when symmetric).
  const bool sym = symmetric && spec.format == WeightFormat::kGptq;
  const int lo = (sym ? 8 : kRandomZeroLo) - spec.zero_offset, hi = (sym ? 8 : kRandomZeroHi) - spec.zero_offset;
  alloc(&w.qzeros);
  random_nibbles_host(w.qzeros.as<uint32_t>(), w.qzeros.numel(), lo, hi, random_subseed(seed, kPartZeros));
  alloc(&w.scales);
  random_uniform_host(w.scales.data, w.scales.dtype, w.scales.numel(), random_scale_lo(k), random_scale_hi(k),
                      random_subseed(seed, kPartScales));
  if (spec.g_idx.ndim > 0) {
    alloc(&w.g_idx);
    random_group_index_host(w.g_idx.as<int32_t>(), k, spec.group_size, random_subseed(seed, kPartGroupIndex));
  }
  return r;
}

}  // namespace tandem
