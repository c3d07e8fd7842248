// Added tokens of tokenizer.json ("added_tokens"), matched in the text before
// the model sees it: leftmost-longest, non-overlapping, honouring single_word,
// lstrip and rstrip the way tokenizers' AddedVocabulary does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::hf {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

// A piece of the input: either text for the model or an added token's id.
struct Segment {
  size_t begin = 0, end = 0;  // byte range in the text that was split
  int32_t token_id = -1;      // >= 0 for an added token
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is what to look for in the text for tokens[i] (the content,
  // or its normalized form).
  void build(const std::vector<AddedToken>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return nodes_.size() <= 1; }
  // Splits `text` into text segments and added-token segments (in order; text
  // segments may be empty only when the whole text is).
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> node, sorted
    int32_t token = -1;                             // index into tokens_ when a pattern ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_{1};
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace tandem::hf
