#include "server/http_server.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/log.h"
#include "server/api_error.h"

namespace tandem::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr size_t kMaxPipelinedBytes = 1 << 20;  // bytes a client may send ahead while served
constexpr auto kHardCloseAfterTimeout = std::chrono::seconds(5);

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

class Session : public HttpExchange, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Shared* shared)
      : stream_(std::move(socket)), shared_(shared), deadline_(stream_.get_executor()) {
    shared_->metrics->connections_open.fetch_add(1);
    shared_->metrics->connections_total.fetch_add(1);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() override {
    shared_->metrics->connections_open.fetch_sub(1);
    if (busy_ && !done_) shared_->active->fetch_sub(1);
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // HttpExchange
  void post(std::function<void()> fn) override { net::post(stream_.get_executor(), std::move(fn)); }

  void respond(int status, const std::string& content_type, std::string body, const HttpHeaders& extra) override {
    if (done_ || streaming_) return;
    mark_done();
    shared_->metrics->count_response(status);
    if (closed_) return;
    if (shared_->draining->load()) keep_alive_ = false;
    std::string out;
    out.reserve(body.size() + 256);
    out += "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) + "\r\n";
    out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
    out += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    out += body;
    finishing_ = true;
    enqueue(std::move(out));
  }

  void start_stream(const std::string& content_type) override {
    if (done_ || streaming_) return;
    streaming_ = true;
    shared_->metrics->count_response(200);
    if (closed_) return;
    if (shared_->draining->load() || http10_) keep_alive_ = false;
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\nCache-Control: no-cache\r\n";
    out += http10_ ? "Connection: close\r\n\r\n"
                   : (keep_alive_ ? "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                                  : "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    enqueue(std::move(out));
  }

  void stream_write(std::string data) override {
    if (!streaming_ || done_ || closed_ || data.empty()) return;
    if (http10_) {
      enqueue(std::move(data));
      return;
    }
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + 16);
    out += size;
    out += data;
    out += "\r\n";
    enqueue(std::move(out));
  }

  void end_stream() override {
    if (!streaming_ || done_) return;
    mark_done();
    if (closed_) return;
    finishing_ = true;
    enqueue(http10_ ? std::string() : std::string("0\r\n\r\n"));
  }

  void on_close(std::function<void()> fn) override { on_close_ = std::move(fn); }
  void on_timeout(std::function<void()> fn) override { on_timeout_ = std::move(fn); }
  bool closed() const override { return closed_; }

 private:
  void mark_done() {
    if (done_) return;
    done_ = true;
    shared_->active->fetch_sub(1);
    deadline_.cancel();
    on_close_ = nullptr;
    on_timeout_ = nullptr;
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(to_ms(shared_->options.idle_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    headers_done_ = std::chrono::steady_clock::now();
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (req[http::field::expect] == "100-continue" && !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close_now();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close_now();
    }
    // Malformed or oversized: answer once, log it, then close.
    begin_exchange(/*keep_alive=*/false);
    RefusedRequest refused;
    refused.peer = peer_;
    // The request line is parsed before the header ends: a 413 for a declared
    // Content-Length still knows its path.
    if (parser_ && !parser_->get().target().empty()) {
      const std::string target(parser_->get().target());
      refused.path = target.substr(0, target.find('?'));
      refused.latency_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - headers_done_).count();
    }
    ApiError e;
    if (ec == http::error::body_limit) {
      e = bad_request("request body is larger than the limit of " + std::to_string(shared_->options.max_body_bytes) +
                      " bytes");
      e.http_status = 413;
      e.code = "body_too_large";
      refused.outcome = "body_too_large";
    } else if (ec == http::error::header_limit) {
      e = bad_request("request headers are larger than 64 KiB");
      e.http_status = 431;
      refused.outcome = "headers_too_large";
    } else {
      e = bad_request("malformed HTTP request: " + ec.message());
      refused.outcome = "malformed";
    }
    refused.status = e.http_status;
    // Logged before the answer, so a client that has its answer finds the line.
    if (shared_->options.on_refused) shared_->options.on_refused(refused);
    respond(e.http_status, "application/json", e.body(), {});
  }

  void begin_exchange(bool keep_alive) {
    busy_ = true;
    done_ = false;
    finishing_ = false;
    streaming_ = false;
    keep_alive_ = keep_alive;
    shared_->active->fetch_add(1);
    stream_.expires_never();
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto req = parser_->release();
    http10_ = req.version() < 11;
    begin_exchange(req.keep_alive());
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = r.target.substr(0, r.target.find('?'));
    r.authorization = std::string(req[http::field::authorization]);
    r.body = std::move(req.body());
    r.peer = peer_;
    r.arrival = headers_done_;
    deadline_.expires_after(to_ms(shared_->options.request_timeout_s));
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->on_deadline();
    });
    start_watch();
    // The handler must not throw; a throw here is a bug, answered as a 500.
    try {
      shared_->handler(std::move(r), shared_from_this());
    } catch (const std::exception& e) {
      TANDEM_LOG(kError) << "handler threw: " << e.what();
      ApiError err = bad_request("internal error");
      err.type = "internal_error";
      respond(500, "application/json", err.body(), {});
    }
  }

  void on_deadline() {
    if (done_ || closed_) return;
    if (auto fn = std::move(on_timeout_)) {
      on_timeout_ = nullptr;
      fn();
    }
    if (done_) return;
    deadline_.expires_after(kHardCloseAfterTimeout);
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->done_) self->peer_gone();
    });
  }

  // While a request is served, a read on the socket notices the client leaving.
  void start_watch() {
    if (watch_pending_ || closed_) return;
    watch_pending_ = true;
    stream_.socket().async_read_some(net::buffer(watch_buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->on_watch(ec, n);
    });
  }

  void on_watch(beast::error_code ec, size_t n) {
    watch_pending_ = false;
    if (!ec) {
      pipelined_.append(watch_buf_, n);
      if (pipelined_.size() > kMaxPipelinedBytes) return peer_gone();
      if (busy_) return start_watch();
      return next_request();
    }
    if (ec == net::error::operation_aborted && !busy_) return next_request();
    if (ec == net::error::operation_aborted) return;
    peer_gone();
  }

  void peer_gone() {
    if (closed_) return;
    closed_ = true;
    if (auto fn = std::move(on_close_)) {
      on_close_ = nullptr;
      fn();
    }
    close_now();
  }

  void close_now() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    closed_ = true;
  }

  void enqueue(std::string data) {
    if (closed_) return;
    pending_ += data;
    if (!writing_) flush();
  }

  void flush() {
    if (pending_.empty()) {
      if (finishing_) end_exchange();
      return;
    }
    writing_ = true;
    inflight_.swap(pending_);
    pending_.clear();
    net::async_write(stream_.socket(), net::buffer(inflight_), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->inflight_.clear();
      if (ec) return self->peer_gone();
      self->flush();
    });
  }

  void end_exchange() {
    busy_ = false;
    finishing_ = false;
    if (!keep_alive_ || closed_) return close_now();
    if (watch_pending_) {
      stream_.socket().cancel();  // on_watch sees operation_aborted and continues
      return;
    }
    next_request();
  }

  void next_request() {
    if (closed_ || busy_) return;
    if (!pipelined_.empty()) {
      auto buf = buffer_.prepare(pipelined_.size());
      std::memcpy(buf.data(), pipelined_.data(), pipelined_.size());
      buffer_.commit(pipelined_.size());
      pipelined_.clear();
    }
    do_read();
  }

  beast::tcp_stream stream_;
  const HttpServer::Shared* shared_;
  net::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string peer_;
  std::chrono::steady_clock::time_point headers_done_;  // of the request being read or served
  // Exchange state, touched only on the strand.
  bool busy_ = false;        // a request is being served
  bool done_ = false;        // its response is complete (respond/end_stream called)
  bool finishing_ = false;   // the last bytes are queued
  bool streaming_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool watch_pending_ = false;
  char watch_buf_[512];
  std::string pipelined_;    // bytes read by the watch: the start of the next request
  std::string pending_;      // queued output
  std::string inflight_;     // output being written
  std::function<void()> on_close_;
  std::function<void()> on_timeout_;
};

}  // namespace

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpMetrics* metrics)
    : shared_{std::move(options), std::move(handler), metrics, &active_, &draining_},
      ioc_(shared_.options.io_threads),
      acceptor_(ioc_) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::listen() {
  const std::string where = shared_.options.host + ":" + std::to_string(shared_.options.port);
  beast::error_code ec;
  auto address = net::ip::make_address(shared_.options.host, ec);
  if (ec) return invalid_argument("host '" + shared_.options.host + "' is not an IP address");
  tcp::endpoint ep(address, static_cast<unsigned short>(shared_.options.port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + where + ": " + ec.message());
  bound_port_ = acceptor_.local_endpoint().port();
  return ok_status();
}

void HttpServer::start() {
  do_accept();
  for (int i = 0; i < shared_.options.io_threads; ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
}

void HttpServer::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. out of file descriptors: wait a little instead of spinning.
      TANDEM_LOG(kWarning) << "accept failed: " << ec.message();
      auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) { do_accept(); });
      return;
    }
    beast::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    std::make_shared<Session>(std::move(socket), &shared_)->start();
    do_accept();
  });
}

void HttpServer::stop_accepting() {
  net::post(ioc_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

void HttpServer::stop() {
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace tandem::server
