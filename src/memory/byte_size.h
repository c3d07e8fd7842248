// Byte sizes given by users ("96GiB", "80 GB", "1.5GiB", "123456") and their
// printing. Units are explicit: KB/MB/GB/TB = 10^3/10^6/10^9/10^12 bytes,
// KiB/MiB/GiB/TiB = 2^10/2^20/2^30/2^40. A bare "G" or "M" is refused as
// ambiguous, so a budget never silently means the other unit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tandem::memory {

inline constexpr int64_t kKiB = int64_t{1} << 10;
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;
inline constexpr int64_t kKB = 1000;
inline constexpr int64_t kMB = 1000 * kKB;
inline constexpr int64_t kGB = 1000 * kMB;

// Parses "<number>[ ]<unit>": the number is decimal, optionally with a
// fraction ("1.5GiB"); unit one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB
// (case-insensitive) or none (bytes). A fraction must come out to whole
// bytes ("1.5B" is an error). Errors name the text and what was wrong.
StatusOr<int64_t> parse_byte_size(std::string_view text);

// "95.37 GiB" style, binary units, two decimals (bytes below 1 KiB as "N B").
std::string format_binary(int64_t bytes);
// "102.40 GB" style, decimal units, two decimals.
std::string format_decimal(int64_t bytes);
// "96.00 GB (89.41 GiB)": both, for plans and refusals.
std::string format_both(int64_t bytes);

}  // namespace tandem::memory
