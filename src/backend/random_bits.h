// Counter-based random numbers (splitmix64 of seed and index) shared by the
// host (random_weights.cpp) and the CUDA backend (random_fill.cu): the same
// values in any order and with any thread count. Plain arithmetic, no includes
// beyond <cstdint>, so nvcc compiles it too.
#pragma once

#include <cstdint>

namespace tandem {

#if defined(__CUDACC__)
#define TANDEM_HD __host__ __device__
#else
#define TANDEM_HD
#endif

TANDEM_HD inline uint64_t random_bits64(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) with 24 bits.
TANDEM_HD inline float random_unit(uint64_t seed, uint64_t i) {
  return static_cast<float>(random_bits64(seed, i) >> 40) * (1.0f / 16777216.0f);
}
// One 32-bit word whose 8 nibbles are uniform in [lo, hi] (0 <= lo <= hi <= 15).
TANDEM_HD inline uint32_t random_nibble_word(uint64_t seed, uint64_t i, int lo, int hi) {
  const uint64_t r = random_bits64(seed, i);
  const uint32_t range = static_cast<uint32_t>(hi - lo + 1);
  uint32_t w = 0;
  for (int j = 0; j < 8; ++j) w |= (static_cast<uint32_t>(lo) + ((r >> (8 * j)) & 0xffu) % range) << (4 * j);
  return w;
}
// A sub-seed per tensor part (weight, zeros, scales, ...).
TANDEM_HD inline uint64_t random_subseed(uint64_t seed, uint64_t part) { return random_bits64(seed, part * 7919u + 1); }
#undef TANDEM_HD

}  // namespace tandem
