// Stop strings over streamed text: holds back just enough text that a stop
// string split across pieces is never emitted, and never splits a UTF-8
// character. The stop string itself is not part of the output.
#pragma once

#include <string>
#include <vector>

namespace tandem {

class StopChecker {
 public:
  explicit StopChecker(std::vector<std::string> stops);

  // Adds decoded text. Returns the text now safe to emit. If `check` (min_tokens
  // reached) and a stop string appears, returns the text before it and sets stopped().
  std::string add(const std::string& piece, bool check);
  // End of stream: the rest of the held text (after a last stop-string check).
  std::string flush(bool check);
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::string take(size_t n);

  std::vector<std::string> stops_;
  size_t hold_ = 0;      // longest stop string - 1 bytes stay held back
  std::string pending_;  // decoded but not emitted
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace tandem
