#include "engine/tokenizer_text_decoder.h"

namespace tandem {
namespace {

class DetokenizerStream : public StreamDecoder {
 public:
  DetokenizerStream(const Tokenizer& t, bool skip, std::span<const int32_t> context) : detok_(t, skip, context) {}
  std::string push(int32_t id) override { return detok_.push(id); }
  std::string finish() override { return detok_.finish(); }

 private:
  IncrementalDetokenizer detok_;
};

}  // namespace

std::unique_ptr<StreamDecoder> TokenizerTextDecoder::start(bool skip_special_tokens) const {
  return std::make_unique<DetokenizerStream>(tokenizer_, skip_special_tokens, std::span<const int32_t>());
}

std::unique_ptr<StreamDecoder> TokenizerTextDecoder::start_after(bool skip_special_tokens,
                                                                 std::span<const int32_t> context) const {
  return std::make_unique<DetokenizerStream>(tokenizer_, skip_special_tokens, context);
}

}  // namespace tandem
