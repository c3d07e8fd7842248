// Server-sent events, incrementally: bytes in (as they arrive off the socket),
// complete events out. Only `data:` fields matter to OpenAI streams; comments
// (":...") and other fields are skipped. An event ends at a blank line, or at
// the end of the stream (finish()).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bench/options.h"
#include "common/status.h"

namespace tandem::bench {

class SseParser {
 public:
  // Appends bytes; returns the data payloads of events completed by them.
  std::vector<std::string> feed(std::string_view bytes);
  // End of stream: a pending event without its blank line, if any.
  std::vector<std::string> finish();

 private:
  void take_line(std::string_view line, std::vector<std::string>& out);

  std::string partial_line_;  // bytes after the last '\n'
  std::string data_;          // data lines of the current event, joined by '\n'
  bool has_data_ = false;
};

// One streamed OpenAI chunk, as the benchmark sees it.
struct StreamChunk {
  bool done = false;            // the "[DONE]" sentinel
  bool has_choices = false;     // a non-empty "choices" array
  bool has_content = false;     // choices[0] carries non-empty text (content or reasoning)
  bool has_usage = false;
  int usage_prompt_tokens = 0;
  int usage_completion_tokens = 0;
  std::string server_error;     // an {"error": ...} object's message; non-empty = failure
};

// Interprets one data payload of a completions (choices[0].text) or chat
// (choices[0].delta.content / reasoning_content) stream. Not JSON, or JSON of
// the wrong shape, is an InvalidArgument naming what is wrong.
StatusOr<StreamChunk> parse_stream_chunk(std::string_view payload, Endpoint endpoint);

}  // namespace tandem::bench
