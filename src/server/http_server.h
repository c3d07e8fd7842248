// Asynchronous HTTP/1.1 server on Boost.Beast/Asio: keep-alive, a small fixed
// pool of I/O threads (never a thread per connection), one strand per
// connection, idle and request timeouts, body limit (413), chunked streaming
// for SSE, and disconnect detection while a request is being served (so the
// handler can abort its engine request).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/status.h"
#include "server/metrics.h"

namespace tandem::server {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // "/v1/completions?x=y"
  std::string path;           // target without the query
  std::string authorization;  // the Authorization header
  std::string body;
  std::string peer;           // "ip:port" of the client
  std::chrono::steady_clock::time_point arrival;  // when its headers were complete
};

// A request the HTTP layer answered itself, before any handler: 413 (body over
// the limit), 431 (headers over the limit) or 400 (malformed HTTP).
struct RefusedRequest {
  int status = 400;
  std::string outcome;  // "body_too_large", "headers_too_large", "malformed"
  std::string path;     // empty when the request line could not be parsed
  std::string peer;
  double latency_ms = 0;  // from the end of the headers (0 if the request line never ended)
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// One request/response on a connection. Every method must be called on the
// connection's strand: from the handler itself, or from a function given to post().
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // Runs fn on the connection's strand (thread-safe; callable from any thread).
  virtual void post(std::function<void()> fn) = 0;
  // A complete response. Ends the exchange.
  virtual void respond(int status, const std::string& content_type, std::string body,
                       const HttpHeaders& extra = {}) = 0;
  // A streamed 200 response (chunked); then stream_write()..., end_stream().
  virtual void start_stream(const std::string& content_type) = 0;
  virtual void stream_write(std::string data) = 0;
  virtual void end_stream() = 0;
  // Called once if the client goes away (or the request times out hard) before
  // the exchange ends; the handler must still end it (respond/end_stream), which is then a no-op.
  virtual void on_close(std::function<void()> fn) = 0;
  // Called once when the request timeout expires before the exchange ends; the
  // handler should stop its work and end the exchange soon (it is closed 5 s later).
  virtual void on_timeout(std::function<void()> fn) = 0;
  virtual bool closed() const = 0;
};

using HttpHandler = std::function<void(HttpRequest&&, std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                 // 0: any free port (see port())
  int io_threads = 2;
  uint64_t max_body_bytes = 8u << 20;
  double request_timeout_s = 600;
  double idle_timeout_s = 60;
  // Told of every RefusedRequest (for the request log), on an I/O thread.
  std::function<void(const RefusedRequest&)> on_refused;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpMetrics* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status listen();                       // binds; the error names host and port
  int port() const { return bound_port_; }
  void start();                          // starts the I/O threads and accepting
  void stop_accepting();                 // closes the listening socket
  void set_draining() { draining_ = true; }  // responses then close their connection
  bool draining() const { return draining_; }
  void stop();                           // stops the I/O threads (pending work is dropped)
  boost::asio::io_context& io() { return ioc_; }
  // Exchanges between a request's arrival and its response's end.
  int64_t num_active() const { return active_.load(); }

  // Shared with sessions (they hold a pointer; the server outlives them).
  struct Shared {
    HttpServerOptions options;
    HttpHandler handler;
    HttpMetrics* metrics;
    std::atomic<int64_t>* active;
    std::atomic<bool>* draining;
  };

 private:
  void do_accept();

  std::atomic<int64_t> active_{0};
  std::atomic<bool> draining_{false};
  Shared shared_;
  int bound_port_ = 0;
  std::vector<std::thread> threads_;
  boost::asio::io_context ioc_;  // after the state sessions point at: destroyed first
  boost::asio::ip::tcp::acceptor acceptor_;
};

const char* http_reason(int status);

}  // namespace tandem::server
