// IncrementalDetokenizer and the stop-string scan (declared in tokenizer.h).
#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

bool ends_with_replacement(std::string_view s) {
  return s.size() >= kReplacement.size() && s.substr(s.size() - kReplacement.size()) == kReplacement;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                                               std::span<const int32_t> context)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {
  if (context.empty() || ends_with_replacement(tokenizer_.decode(context, skip_special_tokens_))) return;
  ids_.assign(context.begin(), context.end());
  num_context_ = read_offset_ = ids_.size();
}

std::string IncrementalDetokenizer::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  const std::string prefix_text = tokenizer_.decode(
      all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  // Wait while the window ends in an incomplete character (decoders turn it
  // into U+FFFD) or has not grown past what was already emitted.
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text) ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0)
    return "";
  std::string piece = new_text.substr(prefix_text.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  text_ += piece;
  return piece;
}

std::string IncrementalDetokenizer::finish() {
  // One full decode settles whatever the window still holds (including an
  // incomplete character, which the decoder turns into U+FFFD).
  const std::span<const int32_t> all(ids_);
  std::string full = tokenizer_.decode(all, skip_special_tokens_);
  if (num_context_ > 0) {
    const std::string context = tokenizer_.decode(all.first(num_context_), skip_special_tokens_);
    full = full.compare(0, context.size(), context) == 0
               ? full.substr(context.size())
               : tokenizer_.decode(all.subspan(num_context_), skip_special_tokens_);
  }
  prefix_offset_ = read_offset_ = ids_.size();
  if (full.size() >= text_.size() && full.compare(0, text_.size(), text_) == 0) {
    std::string rest = full.substr(text_.size());
    text_ = full;
    return rest;
  }
  return "";  // unreachable for the decoders tokenizer.json has: emitted text is a prefix
}

StopScan scan_stop_strings(std::string_view text, std::span<const std::string> stops,
                           size_t search_from) {
  StopScan r;
  size_t max_len = 0;
  for (const auto& s : stops) max_len = std::max(max_len, s.size());
  // A match may begin up to max_len - 1 bytes before search_from (it was held back).
  const size_t from = search_from >= max_len ? search_from - max_len + 1 : 0;
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) continue;
    const size_t pos = text.find(stops[i], from);
    if (pos != std::string_view::npos && (!r.match_pos || pos < *r.match_pos)) {
      r.match_pos = pos;
      r.match_index = i;
    }
  }
  if (r.match_pos) {
    r.send_up_to = *r.match_pos;
    return r;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  r.send_up_to = text.size() - hold;
  return r;
}

}  // namespace tandem
