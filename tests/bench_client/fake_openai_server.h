// A tiny OpenAI-compatible server for the bench client's tests, on 127.0.0.1 and
// an ephemeral port. It streams SSE with injected delays, and the request's
// "model" picks a failure:
//   ok          chunked SSE: first token after ttft_ms, then one every itl_ms, usage, [DONE]
//   ok-close    the same, body delimited by closing the connection, no usage chunk
//   err500      HTTP 500 with an OpenAI error body
//   malformed   one good chunk, then a data line that is not JSON
//   hang        headers, then nothing until the test ends (client must time out)
//   midstream   one good chunk, then {"error": {...}} in the stream
//   cut         two good chunks, then the connection closes mid-chunked-body
// POST /tokenize counts whitespace-separated words plus one BOS, as vLLM's shape.
// One thread per connection; every thread is joined in the destructor.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace tandem::bench::testing {

class FakeOpenAiServer {
 public:
  struct Config {
    int ttft_ms = 60;
    int itl_ms = 15;
  };

  explicit FakeOpenAiServer(Config config) : config_(config), acceptor_(ioc_) {
    using boost::asio::ip::tcp;
    tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(256);
    acceptor_.non_blocking(true);
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~FakeOpenAiServer() {
    stop_ = true;
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(conn_threads_);
    }
    for (auto& t : threads) t.join();
  }

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Bodies of the generation requests received, in arrival order.
  std::vector<nlohmann::json> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int max_streams_at_once() const { return max_active_; }
  int num_tokenize_calls() const { return tokenize_calls_; }

  static int count_tokens(const std::string& text) {  // words + BOS
    int words = 0;
    bool in_word = false;
    for (char c : text) {
      bool space = c == ' ' || c == '\n' || c == '\t';
      if (!space && !in_word) ++words;
      in_word = !space;
    }
    return words + 1;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  void accept_loop() {
    while (!stop_) {
      boost::system::error_code ec;
      tcp::socket sock(ioc_);
      acceptor_.accept(sock, ec);
      if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (ec) continue;
      std::lock_guard<std::mutex> lock(mu_);
      conn_threads_.emplace_back([this, s = std::move(sock)]() mutable { serve(std::move(s)); });
    }
  }

  // Sleeps in small slices so the destructor never waits long.
  bool sleep_ms(int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      if (stop_) return false;
      auto left = until - std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(5)));
    }
    return !stop_;
  }

  static bool write_all(tcp::socket& sock, const std::string& data) {
    boost::system::error_code ec;
    boost::asio::write(sock, boost::asio::buffer(data), ec);
    return !ec;
  }
  static std::string http_chunk(const std::string& data) {
    char len[16];
    std::snprintf(len, sizeof len, "%zx\r\n", data.size());
    return len + data + "\r\n";
  }

  void serve(tcp::socket sock) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(sock, buffer, req, ec);
    if (ec) return;
    auto body = nlohmann::json::parse(req.body(), nullptr, false);
    if (req.target() == "/tokenize") {
      ++tokenize_calls_;
      int n = body.is_object() && body.contains("prompt") ? count_tokens(body["prompt"].get<std::string>()) : 0;
      std::string out = nlohmann::json{{"tokens", std::vector<int>(n, 7)}, {"count", n}}.dump();
      write_all(sock, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(out.size()) + "\r\nConnection: close\r\n\r\n" + out);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(body);
    }
    int active = ++active_;
    int seen = max_active_;
    while (active > seen && !max_active_.compare_exchange_weak(seen, active)) {
    }
    bool counted = true;
    // A stream stops counting before its last bytes go out: once the client
    // has them it may start the next request, possibly before this thread runs again.
    auto end_count = [&] {
      if (std::exchange(counted, false)) --active_;
    };
    stream(sock, req.target() == "/v1/chat/completions", body, end_count);
    end_count();
  }

  template <typename EndCount>
  void stream(tcp::socket& sock, bool chat, const nlohmann::json& body, EndCount& end_count) {
    std::string model = body.value("model", "ok");
    int max_tokens = body.value("max_tokens", 4);
    int prompt_tokens = 0;
    if (body.contains("prompt")) prompt_tokens = count_tokens(body["prompt"].get<std::string>());
    if (model == "err500") {
      std::string out = R"({"error":{"message":"injected failure","type":"server_error","code":500}})";
      write_all(sock, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(out.size()) + "\r\nConnection: close\r\n\r\n" + out);
      return;
    }
    const bool chunked = model != "ok-close";
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    if (!write_all(sock, head)) return;
    auto send = [&](const std::string& data) { return write_all(sock, chunked ? http_chunk(data) : data); };
    auto token_event = [&](int i) {
      nlohmann::json choice = {{"index", 0}, {"finish_reason", nullptr}};
      if (chat) choice["delta"] = {{"content", " tok" + std::to_string(i)}};
      else choice["text"] = " tok" + std::to_string(i);
      return "data: " + nlohmann::json{{"id", "x"}, {"choices", {choice}}}.dump() + "\n\n";
    };
    if (model == "hang") {
      sleep_ms(60 * 1000);
      return;
    }
    if (!sleep_ms(config_.ttft_ms)) return;
    if (chat && !send("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"))
      return;
    if (!send(token_event(0))) return;
    if (model == "malformed") {
      send("data: {\"choices\": [oops\n\n");
      if (chunked) write_all(sock, "0\r\n\r\n");
      return;
    }
    if (model == "midstream") {
      send("data: {\"error\":{\"message\":\"injected mid-stream error\",\"code\":500}}\n\n");
      if (chunked) write_all(sock, "0\r\n\r\n");
      return;
    }
    for (int i = 1; i < max_tokens; ++i) {
      if (!sleep_ms(config_.itl_ms)) return;
      if (!send(token_event(i))) return;
      if (model == "cut" && i == 1) return;  // closes without the chunked terminator
    }
    nlohmann::json fin_choice = {{"index", 0}, {"finish_reason", "length"}};
    if (chat) fin_choice["delta"] = nlohmann::json::object();
    else fin_choice["text"] = "";
    send("data: " + nlohmann::json{{"choices", {fin_choice}}}.dump() + "\n\n");
    if (model != "ok-close") {
      nlohmann::json usage = {{"prompt_tokens", prompt_tokens},
                              {"completion_tokens", max_tokens},
                              {"total_tokens", prompt_tokens + max_tokens}};
      send("data: " + nlohmann::json{{"choices", nlohmann::json::array()}, {"usage", usage}}.dump() + "\n\n");
    }
    end_count();
    send("data: [DONE]\n\n");
    if (chunked) write_all(sock, "0\r\n\r\n");
  }

  Config config_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::thread> conn_threads_;   // GUARDED_BY(mu_)
  std::vector<nlohmann::json> requests_;    // GUARDED_BY(mu_)
  std::atomic<int> active_{0}, max_active_{0}, tokenize_calls_{0};
};

}  // namespace tandem::bench::testing
