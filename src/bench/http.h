// HTTP/1.1 for the benchmark, on Boost.Beast: one streamed POST per request
// (async, many at once on a few threads), and a small blocking POST for set-up
// calls such as /tokenize. Plain http:// only (no TLS).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "bench/options.h"
#include "bench/stats.h"
#include "common/status.h"

namespace tandem::bench {

using Clock = std::chrono::steady_clock;

// http://host[:port][/prefix]; a trailing "/v1" is dropped because endpoint
// paths start with /v1.
struct ServerAddress {
  std::string host;
  std::string port = "80";
  std::string path_prefix;  // "" or "/something", no trailing '/'
  std::string host_header() const;
};
StatusOr<ServerAddress> parse_base_url(const std::string& url);

// Where streamed requests go, resolved once before the run.
struct StreamTarget {
  boost::asio::ip::tcp::resolver::results_type endpoints;
  std::string host_header;
  std::string api_key;
};
StatusOr<StreamTarget> resolve_target(const ServerAddress& address, const std::string& api_key);

struct StreamRequestSpec {
  std::string target;  // e.g. /v1/completions
  std::string body;    // JSON
  Endpoint endpoint = Endpoint::kCompletions;
  double timeout_s = 60;  // connect to end of stream
};

// Starts one streamed request on `executor` (use a strand per request when the
// io_context has several threads). `done` runs exactly once, on that executor,
// with `result` completed: success or the error, and the timings relative to
// `run_start`. Never throws into the io_context.
void start_stream_request(boost::asio::any_io_executor executor, const StreamTarget& target,
                          StreamRequestSpec spec, Clock::time_point run_start, RequestResult result,
                          std::function<void(RequestResult&&)> done);

struct HttpResponse {
  int status = 0;
  std::string body;
};
// Blocking POST of a JSON body; transport failures and timeouts are errors,
// any HTTP status is a response.
StatusOr<HttpResponse> http_post_json(const ServerAddress& address, const std::string& target,
                                      const std::string& body, const std::string& api_key, double timeout_s);

}  // namespace tandem::bench
