// Element types of tensors, and exact fp16/bf16 <-> fp32 conversions on the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace tandem {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8, kI8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kI8: return 1;
  }
  return 0;
}

// Names as safetensors writes them ("F32", "F16", "BF16", "I32", ...).
const char* dtype_name(DType t);
std::optional<DType> dtype_from_safetensors(std::string_view name);
// torch_dtype strings of config.json ("float16", "bfloat16", "float32").
std::optional<DType> dtype_from_torch(std::string_view name);

inline bool is_float_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, NaN kept a (quiet) NaN, as torch does.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; overflow to inf; subnormals exact.
uint16_t f32_to_f16(float f);

// Element i of a float array of type t (F32/F16/BF16), as fp32; safe for
// unaligned data (e.g. inside a mapped safetensors file).
inline float load_as_f32(const void* base, DType t, int64_t i) {
  const char* p = static_cast<const char*>(base);
  if (t == DType::kF32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return t == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

inline void store_from_f32(void* base, DType t, int64_t i, float x) {
  char* p = static_cast<char*>(base);
  if (t == DType::kF32) {
    std::memcpy(p + 4 * i, &x, 4);
    return;
  }
  uint16_t h = t == DType::kF16 ? f32_to_f16(x) : f32_to_bf16(x);
  std::memcpy(p + 2 * i, &h, 2);
}

}  // namespace tandem
