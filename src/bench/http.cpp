#include "bench/http.h"

#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench/sse.h"

namespace tandem::bench {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string ServerAddress::host_header() const {
  return port == "80" ? host : host + ":" + port;
}

StatusOr<ServerAddress> parse_base_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return invalid_argument("base URL " + url + ": https is not supported (http:// only)");
  if (url.rfind(scheme, 0) != 0) return invalid_argument("base URL " + url + ": must start with http://");
  std::string rest = url.substr(scheme.size());
  ServerAddress a;
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) a.path_prefix = rest.substr(slash);
  while (!a.path_prefix.empty() && a.path_prefix.back() == '/') a.path_prefix.pop_back();
  if (a.path_prefix.size() >= 3 && a.path_prefix.compare(a.path_prefix.size() - 3, 3, "/v1") == 0)
    a.path_prefix.resize(a.path_prefix.size() - 3);
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:8000
    size_t close = hostport.find(']');
    if (close == std::string::npos) return invalid_argument("base URL " + url + ": unterminated '['");
    a.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return invalid_argument("base URL " + url + ": junk after ']'");
      a.port = hostport.substr(close + 2);
    }
  } else {
    size_t colon = hostport.rfind(':');
    a.host = hostport.substr(0, colon);
    if (colon != std::string::npos) a.port = hostport.substr(colon + 1);
  }
  if (a.host.empty()) return invalid_argument("base URL " + url + ": no host");
  if (a.port.empty() || a.port.find_first_not_of("0123456789") != std::string::npos || a.port.size() > 5 ||
      std::stoi(a.port) == 0 || std::stoi(a.port) > 65535)
    return invalid_argument("base URL " + url + ": bad port '" + a.port + "'");
  return a;
}

StatusOr<StreamTarget> resolve_target(const ServerAddress& address, const std::string& api_key) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(address.host, address.port, ec);
  if (ec) return unavailable("cannot resolve " + address.host + ":" + address.port + ": " + ec.message());
  return StreamTarget{endpoints, address.host_header(), api_key};
}

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string one_line(std::string s, size_t max_len = 200) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max_len) s = s.substr(0, max_len) + "...";
  return s;
}

bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::timed_out;
}

http::request<http::string_body> make_post(const std::string& host, const std::string& target,
                                           const std::string& body, const std::string& api_key, bool sse) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "tandem-bench");
  req.set(http::field::content_type, "application/json");
  if (sse) req.set(http::field::accept, "text/event-stream");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  // One connection per request, closed by the server, keeps TIME_WAIT off our ports.
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  return req;
}

// One streamed request: connect, write, read the header, then read the body as
// it arrives and time every SSE chunk.
class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(net::any_io_executor ex, const StreamTarget& target, StreamRequestSpec spec,
                Clock::time_point run_start, RequestResult result, std::function<void(RequestResult&&)> done)
      : stream_(ex),
        endpoints_(target.endpoints),
        spec_(std::move(spec)),
        run_start_(run_start),
        result_(std::move(result)),
        done_(std::move(done)) {
    req_ = make_post(target.host_header, spec_.target, spec_.body, target.api_key, true);
  }

  void start() {
    t_start_ = Clock::now();
    result_.start_s = seconds(t_start_ - run_start_);
    stream_.expires_at(t_start_ + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(spec_.timeout_s)));
    stream_.async_connect(endpoints_,
                          [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                            self->on_connect(ec);
                          });
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail(is_timeout(ec) ? ErrorKind::kTimeout : ErrorKind::kConnect, "connect: " + ec.message());
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    if (ec) return fail_io(ec, "write");
    parser_.emplace();
    // Not boost::none: Boost 1.74 compares the Content-Length against an empty
    // optional and fails every sized body.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_header(ec);
    });
  }

  void on_header(beast::error_code ec) {
    if (ec) return fail_io(ec, "reading the response header");
    status_ = parser_->get().result_int();
    read_body();
  }

  void read_body() {
    auto& body = parser_->get().body();
    body.data = buf_;
    body.size = sizeof buf_;
    http::async_read_some(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    const Clock::time_point now = Clock::now();
    if (ec == http::error::need_buffer) ec = {};
    size_t got = sizeof buf_ - parser_->get().body().size;
    if (got > 0) take_bytes(std::string_view(buf_, got), now);
    if (finished_) return;
    bool eof = ec == http::error::end_of_stream || ec == net::error::eof;
    if (ec && !eof) {
      if (ec == http::error::partial_message) return end_of_body(now, /*complete=*/false);
      return fail_io(ec, "reading the stream");
    }
    if (eof || parser_->is_done()) return end_of_body(now, parser_->is_done() || eof);
    read_body();
  }

  void take_bytes(std::string_view bytes, Clock::time_point now) {
    if (status_ != 200) {  // keep the start of an error body for the message
      if (error_body_.size() < 2048) error_body_.append(bytes.substr(0, 2048 - error_body_.size()));
      return;
    }
    for (auto& payload : sse_.feed(bytes)) {
      take_payload(payload, now);
      if (finished_) return;
    }
  }

  void take_payload(const std::string& payload, Clock::time_point now) {
    auto chunk = parse_stream_chunk(payload, spec_.endpoint);
    if (!chunk.ok()) return fail(ErrorKind::kMalformed, chunk.status().message());
    if (!chunk->server_error.empty()) return fail(ErrorKind::kServerError, "server error in stream: " + one_line(chunk->server_error));
    if (chunk->done) return end_of_body(now, /*complete=*/true);
    if (chunk->has_choices) last_choice_ = now;
    if (chunk->has_content) {
      if (result_.num_content_chunks == 0) {
        result_.ttft_s = seconds(now - t_start_);
      } else {
        result_.itl_s.push_back(seconds(now - last_content_));
      }
      last_content_ = now;
      ++result_.num_content_chunks;
    }
    if (chunk->has_usage) {
      result_.usage_seen = true;
      result_.tokens_output = chunk->usage_completion_tokens;
      if (chunk->usage_prompt_tokens > 0) result_.tokens_prompt = chunk->usage_prompt_tokens;
    }
  }

  void end_of_body(Clock::time_point now, bool complete) {
    if (status_ != 200) {
      std::string msg = "HTTP " + std::to_string(status_);
      if (!error_body_.empty()) msg += ": " + one_line(error_body_);
      return fail(ErrorKind::kHttpStatus, msg);
    }
    for (auto& payload : sse_.finish()) {
      take_payload(payload, now);
      if (finished_) return;
    }
    if (!complete)
      return fail(ErrorKind::kTransport, "connection closed mid-stream after " +
                                             std::to_string(result_.num_content_chunks) + " content chunks");
    if (result_.num_content_chunks == 0)
      return fail(ErrorKind::kNoContent, "stream ended without a content chunk");
    result_.success = true;
    result_.e2e_s = seconds(last_choice_ - t_start_);
    if (!result_.usage_seen) result_.tokens_output = result_.num_content_chunks;
    finish();
  }

  void fail_io(const beast::error_code& ec, const std::string& what) {
    if (is_timeout(ec)) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%g", spec_.timeout_s);
      return fail(ErrorKind::kTimeout, std::string("timed out after ") + secs + " s (" + what +
                                           ", " + std::to_string(result_.num_content_chunks) + " content chunks)");
    }
    fail(ErrorKind::kTransport, what + ": " + ec.message());
  }

  void fail(ErrorKind kind, std::string message) {
    if (finished_) return;
    result_.success = false;
    result_.error_kind = kind;
    result_.error = one_line(std::move(message));
    finish();
  }

  void finish() {
    finished_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    auto done = std::move(done_);
    done(std::move(result_));
  }

  beast::tcp_stream stream_;
  tcp::resolver::results_type endpoints_;
  StreamRequestSpec spec_;
  Clock::time_point run_start_;
  RequestResult result_;
  std::function<void(RequestResult&&)> done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  char buf_[16384];
  SseParser sse_;
  int status_ = 0;
  std::string error_body_;
  Clock::time_point t_start_, last_content_, last_choice_;
  bool finished_ = false;
};

}  // namespace

void start_stream_request(net::any_io_executor executor, const StreamTarget& target, StreamRequestSpec spec,
                          Clock::time_point run_start, RequestResult result,
                          std::function<void(RequestResult&&)> done) {
  std::make_shared<StreamSession>(executor, target, std::move(spec), run_start, std::move(result), std::move(done))
      ->start();
}

StatusOr<HttpResponse> http_post_json(const ServerAddress& address, const std::string& target,
                                      const std::string& body, const std::string& api_key, double timeout_s) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(address.host, address.port, ec);
  if (ec) return unavailable("cannot resolve " + address.host + ":" + address.port + ": " + ec.message());
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  auto req = make_post(address.host_header(), target, body, api_key, false);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  std::string where = "POST " + address.host_header() + target;
  beast::error_code result_ec;
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      result_ec = e;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code e, size_t) {
      if (e) {
        result_ec = e;
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) { result_ec = e; });
    });
  });
  ioc.run();
  if (result_ec) {
    if (is_timeout(result_ec)) return Status(StatusCode::kDeadlineExceeded, where + ": timed out");
    return unavailable(where + ": " + result_ec.message());
  }
  HttpResponse resp;
  resp.status = parser.get().result_int();
  resp.body = std::move(parser.get().body());
  return resp;
}

}  // namespace tandem::bench
