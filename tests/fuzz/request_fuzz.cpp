// Fuzz target: request parsing and validation. Each input is tried as
//   1. a request body for every endpoint's parser (completions, chat, tokenize,
//      detokenize), which must answer a value or a 400-class ApiError, never
//      crash, hang or throw;
//   2. raw bytes of an HTTP/1.1 request for Beast's parser with the server's
//      limits (the layer in front of the JSON parsers).
// Built with libFuzzer (-DTANDEM_FUZZ=ON, clang) or into tandem_fuzz_replay
// (any compiler), which runs the corpus in CI.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "server/request_parse.h"

namespace {

using namespace tandem::server;

template <typename Result>
void check(const Result& r) {
  if (!r.ok()) {
    const ApiError& e = r.error();
    if (e.http_status != 400 || e.message.empty()) __builtin_trap();
    (void)e.body();
  }
}

void fuzz_http(std::string_view data) {
  namespace http = boost::beast::http;
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 16);
  parser.header_limit(1 << 14);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  // Feed in two pieces to exercise the incremental path.
  const size_t half = data.size() / 2;
  used += parser.put(boost::asio::buffer(data.data(), half), ec);
  if (!ec || ec == http::error::need_more) {
    ec = {};
    std::string_view rest = data.substr(used);
    parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
  }
  if (!ec && parser.is_done()) {
    const auto& req = parser.get();
    // A complete request's body goes on to the JSON parsers, as in the server.
    check(parse_completion_request(req.body()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  check(parse_completion_request(body));
  check(parse_chat_request(body));
  check(parse_tokenize_request(body));
  check(parse_detokenize_request(body));
  (void)body_model_field(body);
  fuzz_http(body);
  return 0;
}
