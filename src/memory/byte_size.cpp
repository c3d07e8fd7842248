#include "memory/byte_size.h"

#include <cctype>
#include <cstdio>
#include <limits>

namespace tandem::memory {
namespace {

struct Unit {
  const char* name;  // lower case
  int64_t bytes;
};

constexpr Unit kUnits[] = {
    {"b", 1},
    {"kb", kKB},           {"mb", kMB},           {"gb", kGB},           {"tb", 1000 * kGB},
    {"kib", kKiB},         {"mib", kMiB},         {"gib", kGiB},         {"tib", kGiB * kKiB},
};

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace

StatusOr<int64_t> parse_byte_size(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  size_t end = text.size();
  while (end > i && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  std::string_view s = text.substr(i, end - i);
  if (s.empty()) return invalid_argument("byte size is empty (expected e.g. 96GiB or 80GB)");
  if (s[0] == '-') return invalid_argument("byte size " + quoted(text) + " is negative");

  // Integer part and fraction digits, kept exact as integers.
  size_t p = 0;
  unsigned __int128 mantissa = 0;
  int num_int_digits = 0, num_frac_digits = 0;
  while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
    mantissa = mantissa * 10 + static_cast<unsigned>(s[p] - '0');
    ++num_int_digits;
    ++p;
    if (mantissa > (unsigned __int128)std::numeric_limits<int64_t>::max())
      return out_of_range("byte size " + quoted(text) + " is too large");
  }
  if (p < s.size() && s[p] == '.') {
    ++p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
      if (num_frac_digits == 18)
        return invalid_argument("byte size " + quoted(text) + " has too many decimals");
      mantissa = mantissa * 10 + static_cast<unsigned>(s[p] - '0');
      ++num_frac_digits;
      ++p;
    }
  }
  if (num_int_digits + num_frac_digits == 0)
    return invalid_argument("byte size " + quoted(text) + " does not start with a number");
  while (p < s.size() && s[p] == ' ') ++p;

  std::string unit;
  for (; p < s.size(); ++p) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(s[p])));
  int64_t unit_bytes = 0;
  if (unit.empty()) {
    unit_bytes = 1;
  } else {
    for (const Unit& u : kUnits)
      if (unit == u.name) unit_bytes = u.bytes;
    if (unit_bytes == 0) {
      if (unit == "k" || unit == "m" || unit == "g" || unit == "t")
        return invalid_argument("byte size " + quoted(text) + " has an ambiguous unit '" +
                                std::string(s.substr(s.size() - unit.size())) +
                                "': write GB (10^9 bytes) or GiB (2^30 bytes), and likewise for K, M, T");
      return invalid_argument("byte size " + quoted(text) + " has an unknown unit '" +
                              std::string(s.substr(s.size() - unit.size())) +
                              "' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)");
    }
  }

  unsigned __int128 scaled = mantissa * static_cast<unsigned __int128>(unit_bytes);
  unsigned __int128 divisor = 1;
  for (int k = 0; k < num_frac_digits; ++k) divisor *= 10;
  if (scaled % divisor != 0)
    return invalid_argument("byte size " + quoted(text) + " is not a whole number of bytes");
  unsigned __int128 bytes = scaled / divisor;
  if (bytes > (unsigned __int128)std::numeric_limits<int64_t>::max())
    return out_of_range("byte size " + quoted(text) + " is too large");
  return static_cast<int64_t>(bytes);
}

namespace {

std::string format_scaled(int64_t bytes, int64_t base, const char* const* names) {
  const char* sign = bytes < 0 ? "-" : "";
  double v = bytes < 0 ? -static_cast<double>(bytes) : static_cast<double>(bytes);
  if (v < static_cast<double>(base)) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%lld B", sign, static_cast<long long>(bytes < 0 ? -bytes : bytes));
    return buf;
  }
  int k = 0;
  while (k < 3 && v >= static_cast<double>(base)) {
    v /= static_cast<double>(base);
    ++k;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%.2f %s", sign, v, names[k]);
  return buf;
}

}  // namespace

std::string format_binary(int64_t bytes) {
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB"};
  return format_scaled(bytes, 1024, kNames);
}

std::string format_decimal(int64_t bytes) {
  static constexpr const char* kNames[] = {"B", "KB", "MB", "GB"};
  return format_scaled(bytes, 1000, kNames);
}

std::string format_both(int64_t bytes) { return format_decimal(bytes) + " (" + format_binary(bytes) + ")"; }

}  // namespace tandem::memory
