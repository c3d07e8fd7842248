#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace tandem::hf {
namespace {

// Rust's char::is_alphanumeric for ASCII, and letters/digits beyond ASCII
// approximated as "not whitespace and not ASCII punctuation" (single_word only).
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return !unicode::is_whitespace(cp);
}

uint32_t last_code_point(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<uint8_t>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  size_t p = i;
  return unicode::next_code_point(s, p);
}

}  // namespace

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
  const auto& nx = nodes_[node].next;
  auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(b, INT32_MIN));
  return it != nx.end() && it->first == b ? it->second : -1;
}

void AddedTokenMatcher::build(const std::vector<AddedToken>& tokens,
                              const std::vector<std::string>& patterns) {
  tokens_ = tokens;
  nodes_.assign(1, Node());
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_byte_[static_cast<uint8_t>(p[0])] = true;
    int32_t node = 0;
    for (char ch : p) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t c = child(node, b);
      if (c < 0) {
        c = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        auto& nx = nodes_[node].next;
        nx.insert(std::lower_bound(nx.begin(), nx.end(), std::make_pair(b, INT32_MIN)), {b, c});
      }
      node = c;
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t text_begin = 0;  // start of the pending text segment
  size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    // Longest pattern starting at pos.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[best];
    size_t start = pos, stop = best_end;
    if (tok.single_word) {
      const bool left_ok = start == 0 || !is_word_char(last_code_point(text.substr(0, start)));
      size_t p = stop;
      const bool right_ok = stop == text.size() || !is_word_char(unicode::next_code_point(text, p));
      if (!left_ok || !right_ok) {
        pos = best_end;  // the match is consumed without splitting, as in HF
        continue;
      }
    }
    if (tok.lstrip) {
      while (start > text_begin) {
        size_t b = start - 1;
        while (b > text_begin && (static_cast<uint8_t>(text[b]) & 0xC0) == 0x80) --b;
        size_t q = b;
        if (!unicode::is_whitespace(unicode::next_code_point(text, q))) break;
        start = b;
      }
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t q = stop;
        if (!unicode::is_whitespace(unicode::next_code_point(text, q))) break;
        stop = q;
      }
    }
    if (start > text_begin) out.push_back({text_begin, start, -1});
    out.push_back({start, stop, tok.id});
    pos = text_begin = stop;
  }
  if (text_begin < text.size() || out.empty()) out.push_back({text_begin, text.size(), -1});
}

}  // namespace tandem::hf
