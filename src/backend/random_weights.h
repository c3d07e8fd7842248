// Random weights for `--load-format dummy` and `tandem synth`: counter-based
// random numbers (splitmix64 of seed and index), so host and device draw the
// same values in any order and with any thread count, and the value
// conventions every backend follows (backend.h, prepare_random_linear).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/random_bits.h"

namespace tandem {


// The value conventions (K = in features).
inline float random_weight_bound(int64_t k) { return std::sqrt(3.0f / static_cast<float>(k)); }  // std 1/sqrt(K)
inline float random_scale_lo(int64_t k) { return random_weight_bound(k) / 4.6f * 0.8f; }
inline float random_scale_hi(int64_t k) { return random_weight_bound(k) / 4.6f * 1.2f; }
constexpr int kRandomZeroLo = 5, kRandomZeroHi = 10;
// Sub-seed parts.
enum RandomPart : uint64_t { kPartWeight = 1, kPartZeros, kPartScales, kPartBias, kPartGroupIndex };

// Host fills, multithreaded for large tensors.
void random_uniform_host(void* dst, DType dtype, int64_t n, float lo, float hi, uint64_t seed);
void random_nibbles_host(uint32_t* dst, int64_t n_words, int lo, int hi, uint64_t seed);
// Act-order g_idx [K]: a random permutation of the rows, group k / G at its place
// (every group has G rows, as GPTQ's desc_act produces).
void random_group_index_host(int32_t* g_idx, int64_t k, int group_size, uint64_t seed);
// The input permutation for sorted rows of that g_idx: perm[k] = the original row
// packed at k (what backends that sort act-order rows at load compute).
std::vector<int32_t> random_act_order_perm(int64_t k, uint64_t seed);

// A layer's checkpoint-layout tensors (backend.h, LinearWeight) drawn on the
// host: `spec` gives format, shapes and dtypes (views without data); the
// result's views point into `storage`. symmetric (GPTQ sym): every zero is 8.
struct RandomLinearHost {
  LinearWeight weight;
  std::vector<std::vector<uint8_t>> storage;
};
RandomLinearHost random_linear_host(const LinearWeight& spec, uint64_t seed, bool symmetric = false);

}  // namespace tandem
