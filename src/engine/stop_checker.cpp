#include "engine/stop_checker.h"

#include <algorithm>

namespace tandem {

StopChecker::StopChecker(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
  for (const auto& s : stops_) hold_ = std::max(hold_, s.size() - 1);
}

std::string StopChecker::take(size_t n) {
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StopChecker::add(const std::string& piece, bool check) {
  if (stopped_) return {};
  pending_ += piece;
  if (check && !stops_.empty()) {
    size_t best = std::string::npos;
    for (const auto& s : stops_) {
      size_t at = pending_.find(s);
      if (at < best) {
        best = at;
        matched_ = s;
      }
    }
    if (best != std::string::npos) {
      stopped_ = true;
      std::string out = take(best);
      pending_.clear();
      return out;
    }
  }
  if (pending_.size() <= hold_) return {};
  size_t n = pending_.size() - hold_;
  // Back up to a character boundary: never emit half of a UTF-8 sequence.
  while (n > 0 && n < pending_.size() && (static_cast<unsigned char>(pending_[n]) & 0xC0) == 0x80) --n;
  return take(n);
}

std::string StopChecker::flush(bool check) {
  std::string out = add("", check);
  if (stopped_) return out;
  return out + take(pending_.size());
}

}  // namespace tandem
