#include "engine/stop_checker.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace tandem {

StopChecker::StopChecker(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string StopChecker::add(const std::string& piece, bool check) {
  if (stopped_) return {};
  text_ += piece;
  size_t up_to = text_.size();
  if (check && !stops_.empty()) {
    StopScan scan = scan_stop_strings(text_, stops_, sent_);
    if (scan.match_pos && *scan.match_pos >= sent_) {
      stopped_ = true;
      matched_ = stops_[scan.match_index];
      up_to = *scan.match_pos;
    } else if (!scan.match_pos) {
      up_to = scan.send_up_to;
    }
    // (A match starting inside text already sent is impossible: it was held.)
  }
  up_to = std::max(up_to, sent_);
  std::string out = text_.substr(sent_, up_to - sent_);
  sent_ = up_to;
  return out;
}

std::string StopChecker::flush(bool check) {
  std::string out = add("", check);
  if (stopped_) return out;
  out += text_.substr(sent_);
  sent_ = text_.size();
  return out;
}

}  // namespace tandem
