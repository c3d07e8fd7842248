// UTF-8 and Unicode helpers the tokenizer needs: lossy repair of invalid UTF-8
// (the same U+FFFD substitution as Python's errors="replace" and Rust's
// from_utf8_lossy), code point iteration, NFC, and White_Space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::unicode {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Replaces every maximal ill-formed subsequence with U+FFFD (Unicode's
// "substitution of maximal subparts", which Python and Rust both use).
std::string to_valid_utf8(std::string_view s);

// Length in bytes of the well-formed sequence starting at s[0], or 0 when the
// bytes there do not start a complete well-formed character.
size_t utf8_char_len(std::string_view s);

// Length of the longest prefix of `s` that does not end inside an incomplete
// (truncated but so far valid) UTF-8 sequence. Bytes that can never become valid
// are counted as complete (they decode to U+FFFD).
size_t complete_utf8_prefix(std::string_view s);

// Decodes the character at s[pos] of well-formed UTF-8 and advances pos.
uint32_t next_code_point(std::string_view s, size_t& pos);

void append_utf8(std::string& out, uint32_t cp);

// Unicode Normalization Form C.
std::string nfc(std::string_view s);

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_whitespace(uint32_t cp);

}  // namespace tandem::unicode
