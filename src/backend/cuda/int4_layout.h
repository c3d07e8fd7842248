// The CUDA backend's int4 weight layout ("tiled int4"), shared by the host-side
// repacker and the kernels. Plain C++ (no CUDA types).
//
// A linear layer y[M,N] = x[M,K] · W[K,N] with 4-bit W is stored as tiles of
// 8 output columns x 128 input rows (512 bytes). Tile (nt, kt) lives at word
// offset (nt * (K/128) + kt) * 128. Inside a tile, lane t (0..31) of a warp
// owns words 4t..4t+3 (one 16-byte load): column n = 8*nt + t/4, and for
// mma.m16n8k16 step s (0..7, 16 rows each) the B-fragment rows
// r = 16*s + 2*(t%4) + {0, 1, 8, 9}. Word w holds steps 2w and 2w+1; nibble p
// (p = 0..3) and nibble p+4 form the pair that one 32-bit B register needs:
//   p=0: (r0, r1) of step 2w    p=1: (r8, r9) of step 2w
//   p=2: (r0, r1) of step 2w+1  p=3: (r8, r9) of step 2w+1
// so `(word >> 4p) & 0x000F000F | magic` yields two fp16/bf16 values at once.
//
// Scales and zeros (one buffer, two arrays, in the activation type):
//   scales [K/G][N]           (a lane's two output columns are one 32-bit load)
//   zeros  [N][K/G]           stored as magic + zero, magic = 1024 (fp16) or 128 (bf16)
// so (pair - (magic + zero)) is the exact integer q - zero, and the scale is
// applied to the fp32 accumulator once per group: y = sum_g s[g] * sum_k x (q - z).
// Act-order (GPTQ desc_act): rows are sorted by group at repack time and
// `perm[K]` says which input column feeds packed row k: x_packed[k] = x[perm[k]].
#pragma once

#include <cstdint>

namespace tandem::cuda {

inline constexpr int kInt4TileK = 128;  // rows (input features) per tile
inline constexpr int kInt4TileN = 8;    // columns (output features) per tile
inline constexpr int kInt4TileWords = 128;

// Word offset and nibble of element (k, n) in the tiled layout (host-side helper,
// used by the repacker and its tests).
struct Int4Position {
  int64_t word;
  int nibble;
};
inline Int4Position int4_position(int64_t k, int64_t n, int64_t K) {
  const int64_t nt = n / 8, kt = k / 128;
  const int kk = static_cast<int>(k % 128);
  const int s = kk / 16, r = kk % 16;                  // mma step, row inside the step
  const int quad = (r % 8) / 2, hi = r >= 8, second = r % 2;
  const int lane = static_cast<int>(n % 8) * 4 + quad;  // t/4 = column, t%4 = quad
  const int w = s / 2;
  const int p = (s % 2) * 2 + hi;
  Int4Position pos;
  pos.word = (nt * (K / 128) + kt) * 128 + lane * 4 + w;
  pos.nibble = p + 4 * second;
  return pos;
}

}  // namespace tandem::cuda
