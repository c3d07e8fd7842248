// Stop strings over streamed text (the tokenizer's scan_stop_strings does the
// matching): holds back only a tail that could still begin a stop string, so a
// stop string split across pieces is never emitted, and the stop string itself
// is not part of the output. Pieces come from the detokenizer as complete
// UTF-8, and a held tail starts where a stop string starts, so no character is split.
#pragma once

#include <string>
#include <vector>

namespace tandem {

class StopChecker {
 public:
  explicit StopChecker(std::vector<std::string> stops);

  // Adds decoded text; returns the text now safe to emit. `check` is false
  // before min_tokens: then nothing stops and nothing is held.
  std::string add(const std::string& piece, bool check);
  // End of stream: the rest of the held text (after a last check).
  std::string flush(bool check);
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;  // everything decoded so far
  size_t sent_ = 0;   // text_[0, sent_) was returned
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace tandem
