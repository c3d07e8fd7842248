#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

namespace tandem::unicode {
namespace {

#include "tokenizer/nfc_tables.inc"

// Length of the valid prefix of a UTF-8 sequence at s[0] (0..4) and whether it
// is complete. Follows Unicode Table 3-7 (well-formed byte sequences).
struct SeqCheck {
  size_t valid;  // bytes that form a valid (possibly incomplete) prefix
  size_t need;   // total length the lead byte announces (0 = invalid lead)
};

SeqCheck check_seq(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {1, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, 0};
  }
  size_t i = 1;
  for (; i < need && i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
  }
  return {i, need};
}

uint8_t ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCccTable + std::size(kCccTable);
  const auto* it = std::lower_bound(kCccTable, end, cp,
                                    [](const uint32_t(&e)[2], uint32_t c) { return e[0] < c; });
  return it != end && (*it)[0] == cp ? static_cast<uint8_t>((*it)[1]) : 0;
}

bool needs_nfc_work(uint32_t cp) {
  if (cp < 0x300) return false;
  const auto* end = kNfcWorkRanges + std::size(kNfcWorkRanges);
  const auto* it = std::upper_bound(kNfcWorkRanges, end, cp,
                                    [](uint32_t c, const uint32_t(&r)[2]) { return c < r[0]; });
  if (it == kNfcWorkRanges) return false;
  --it;
  return cp >= (*it)[0] && cp <= (*it)[1];
}

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = kDecompIndex + std::size(kDecompIndex);
  const auto* it = std::lower_bound(kDecompIndex, end, cp,
                                    [](const uint32_t(&e)[3], uint32_t c) { return e[0] < c; });
  if (it != end && (*it)[0] == cp) {
    out.insert(out.end(), kDecompData + (*it)[1], kDecompData + (*it)[1] + (*it)[2]);
  } else {
    out.push_back(cp);
  }
}

// Returns the primary composite of (a, b) or 0.
uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const auto* end = kComposeTable + std::size(kComposeTable);
  const auto* it = std::lower_bound(kComposeTable, end, key,
                                    [](const uint64_t(&e)[2], uint64_t k) { return e[0] < k; });
  return it != end && (*it)[0] == key ? static_cast<uint32_t>((*it)[1]) : 0;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_char_len(s.substr(i));
    if (!n) return false;
    i += n;
  }
  return true;
}

size_t utf8_char_len(std::string_view s) {
  if (s.empty()) return 0;
  const auto c = check_seq(s);
  return c.need && c.valid == c.need ? c.need : 0;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = check_seq(s.substr(i));
    if (c.need && c.valid == c.need) {
      out.append(s.data() + i, c.need);
      i += c.need;
    } else {
      append_utf8(out, kReplacementChar);
      i += std::max<size_t>(c.valid, 1);  // a maximal subpart becomes one U+FFFD
    }
  }
  return out;
}

size_t complete_utf8_prefix(std::string_view s) {
  // An incomplete tail is at most 3 bytes; look at the last lead byte.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (b < 0x80) return n;
    const auto c = check_seq(s.substr(n - back));
    // Valid so far but shorter than announced: the character is still arriving.
    if (c.need && c.valid == back && back < c.need) return n - back;
    return n;
  }
  return n;
}

uint32_t next_code_point(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  if (b0 < 0xE0) {
    const uint32_t cp = ((b0 & 0x1F) << 6) | (static_cast<uint8_t>(s[pos + 1]) & 0x3F);
    pos += 2;
    return cp;
  }
  if (b0 < 0xF0) {
    const uint32_t cp = ((b0 & 0x0F) << 12) | ((static_cast<uint8_t>(s[pos + 1]) & 0x3F) << 6) |
                        (static_cast<uint8_t>(s[pos + 2]) & 0x3F);
    pos += 3;
    return cp;
  }
  const uint32_t cp = ((b0 & 0x07) << 18) | ((static_cast<uint8_t>(s[pos + 1]) & 0x3F) << 12) |
                      ((static_cast<uint8_t>(s[pos + 2]) & 0x3F) << 6) |
                      (static_cast<uint8_t>(s[pos + 3]) & 0x3F);
  pos += 4;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string nfc(std::string_view s) {
  bool work = false;
  for (size_t i = 0; i < s.size() && !work;) {
    if (static_cast<uint8_t>(s[i]) < 0xCC) {  // every code point below U+0300
      i += static_cast<uint8_t>(s[i]) < 0x80 ? 1 : 2;
      continue;
    }
    work = needs_nfc_work(next_code_point(s, i));
  }
  if (!work) return std::string(s);

  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_code_point(s, i), cps);
  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (!ccc_of(cps[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc_of(cps[j])) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](uint32_t a, uint32_t b) { return ccc_of(a) < ccc_of(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless blocked
  // (something between has class 0 or a class >= its own).
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  size_t starter = SIZE_MAX;
  int last_ccc = 0;  // class of out.back()
  for (uint32_t cp : cps) {
    const int cc = ccc_of(cp);
    if (starter != SIZE_MAX) {
      const bool adjacent = out.size() == starter + 1;
      if (adjacent || (last_ccc != 0 && last_ccc < cc)) {
        if (uint32_t c = compose_pair(out[starter], cp)) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (cc == 0) starter = out.size();
    last_ccc = cc;
    out.push_back(cp);
  }
  std::string r;
  r.reserve(s.size());
  for (uint32_t cp : out) append_utf8(r, cp);
  return r;
}

bool is_whitespace(uint32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace tandem::unicode
