// The HTTP layer and the app in-process, over real loopback sockets, against the
// echo engine: keep-alive, pipelining, 413, malformed requests, auth, routing,
// client disconnect -> abort -> pages freed, request timeout, 429, starting.
#include <algorithm>
#include <chrono>
#include <utility>
#include <regex>
#include <thread>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "server/server_app.h"
#include "server_testing/echo_service.h"

namespace tandem::server {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class AppFixture : public ::testing::Test {
 protected:
  void start(ServerConfig config, ModelServiceFactory factory = testing::make_echo_service, bool wait = true) {
    config.port = 0;
    if (config.models.empty()) {
      ASSERT_TRUE(add_model_flag("a=echo", &config).ok());
      ASSERT_TRUE(add_model_flag("b=echo", &config).ok());
    }
    ASSERT_TRUE(finalize_config(&config, nullptr).ok());
    app_ = std::make_unique<ServerApp>(std::move(config), std::move(factory));
    ASSERT_TRUE(app_->start().ok());
    if (wait) wait_ready();
  }
  void wait_ready() {
    for (int i = 0; i < 200; ++i) {
      if (request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").find("\"status\":\"ok\"") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  tcp::socket connect() {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), app_->port()));
    return s;
  }
  // Reads one response (Content-Length or chunked) from s.
  static std::string read_response(tcp::socket& s, std::string* leftover) {
    std::string data = *leftover;
    leftover->clear();
    char buf[4096];
    auto fill = [&] {
      boost::system::error_code ec;
      size_t n = s.read_some(net::buffer(buf), ec);
      if (ec) return false;
      data.append(buf, n);
      return true;
    };
    size_t hdr_end;
    while ((hdr_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return data;
    }
    std::string head = data.substr(0, hdr_end + 4);
    std::smatch m;
    if (std::regex_search(head, m, std::regex("Content-Length: (\\d+)"))) {
      size_t len = std::stoul(m[1]);
      while (data.size() < hdr_end + 4 + len) {
        if (!fill()) return data;
      }
      *leftover = data.substr(hdr_end + 4 + len);
      return data.substr(0, hdr_end + 4 + len);
    }
    while (data.find("\r\n0\r\n\r\n", hdr_end) == std::string::npos) {
      if (!fill()) return data;
    }
    size_t end = data.find("\r\n0\r\n\r\n", hdr_end) + 7;
    *leftover = data.substr(end);
    return data.substr(0, end);
  }
  std::string request(const std::string& raw) {
    tcp::socket s = connect();
    net::write(s, net::buffer(raw));
    std::string rest;
    return read_response(s, &rest);
  }
  static std::string post(const std::string& path, const std::string& body, const std::string& extra = "") {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  double metric(const std::string& line_prefix) {
    std::string text = request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    size_t p = text.find("\n" + line_prefix + " ");
    if (p == std::string::npos) return -1;
    return std::stod(text.substr(p + line_prefix.size() + 2));
  }

  net::io_context io_;
  std::unique_ptr<ServerApp> app_;
};

TEST_F(AppFixture, KeepAliveAndPipelining) {
  start({});
  tcp::socket s = connect();
  std::string rest;
  const std::string body = R"({"model":"a","prompt":"abc","max_tokens":3,"temperature":0})";
  net::write(s, net::buffer(post("/v1/completions", body)));
  std::string r1 = read_response(s, &rest);
  EXPECT_NE(r1.find("HTTP/1.1 200"), std::string::npos) << r1;
  EXPECT_NE(r1.find("\"text\":\"abc\""), std::string::npos) << r1;
  EXPECT_NE(r1.find("Connection: keep-alive"), std::string::npos);
  // Two requests written at once on the same connection: both answered, in order.
  net::write(s, net::buffer(post("/tokenize", R"({"model":"a","prompt":"hi"})") + post("/detokenize", R"({"model":"b","tokens":[104,105]})")));
  std::string r2 = read_response(s, &rest);
  std::string r3 = read_response(s, &rest);
  EXPECT_NE(r2.find("\"tokens\":[256,104,105]"), std::string::npos) << r2;
  EXPECT_NE(r3.find("\"prompt\":\"hi\""), std::string::npos) << r3;
}

// Every refused request gets one request log line, whether the HTTP layer
// (413, malformed) or the app (invalid body, unknown model) refused it.
TEST_F(AppFixture, RefusedRequestsAreLogged) {
  ServerConfig c;
  c.max_body_bytes = 1000;
  start(c);
  auto log_of = [&](const std::string& raw) {
    ::testing::internal::CaptureStderr();
    std::string response = request(raw);
    std::string log = ::testing::internal::GetCapturedStderr();
    return std::make_pair(response, log);
  };
  const std::regex id(" id=(req|cmpl|chatcmpl)-[0-9a-f]{16} ");
  auto [r413, l413] = log_of(post("/v1/completions", std::string(2000, ' ')));
  EXPECT_NE(r413.find("HTTP/1.1 413"), std::string::npos);
  EXPECT_NE(l413.find("info request id=req-"), std::string::npos) << l413;
  EXPECT_NE(l413.find(" model=- path=/v1/completions status=413 outcome=body_too_large "), std::string::npos) << l413;
  EXPECT_NE(l413.find(" latency_ms="), std::string::npos) << l413;
  auto [rbad, lbad] = log_of("GARBAGE\r\n\r\n");
  EXPECT_NE(rbad.find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(lbad.find(" path=- status=400 outcome=malformed "), std::string::npos) << lbad;
  auto [rinv, linv] = log_of(post("/v1/chat/completions", R"({"model":"b","messages":[],"temperature":9})"));
  EXPECT_NE(rinv.find("HTTP/1.1 400"), std::string::npos);
  EXPECT_TRUE(std::regex_search(linv, id)) << linv;
  EXPECT_NE(linv.find(" model=b path=/v1/chat/completions status=400 outcome=invalid "), std::string::npos) << linv;
  auto [rjson, ljson] = log_of(post("/tokenize", "{nope"));
  EXPECT_NE(ljson.find(" model=- path=/tokenize status=400 outcome=invalid "), std::string::npos) << ljson;
  auto [r404, l404] = log_of(post("/v1/completions", R"({"model":"zzz","prompt":"x"})"));
  EXPECT_NE(l404.find(" model=zzz path=/v1/completions status=404 outcome=unknown_model "), std::string::npos)
      << l404;
  // One line each.
  for (const std::string& l : {l413, lbad, linv, ljson, l404}) {
    EXPECT_EQ(std::count(l.begin(), l.end(), '\n'), 1) << l;
  }
}

TEST_F(AppFixture, BodyLimitMalformedRoutesMethods) {
  ServerConfig c;
  c.max_body_bytes = 1000;
  start(c);
  std::string big(2000, ' ');
  EXPECT_NE(request(post("/v1/completions", big)).find("HTTP/1.1 413"), std::string::npos);
  EXPECT_NE(request("GARBAGE\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  std::string r404 = request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(r404.find("HTTP/1.1 404"), std::string::npos);
  EXPECT_NE(r404.find("no route for GET /nope"), std::string::npos);
  EXPECT_NE(request("GET /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n").find("HTTP/1.1 405"), std::string::npos);
  std::string bad_json = request(post("/v1/completions", "{nope"));
  EXPECT_NE(bad_json.find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(bad_json.find("invalid JSON body"), std::string::npos);
  std::string unknown = request(post("/v1/completions", R"({"model":"zzz","prompt":"x"})"));
  EXPECT_NE(unknown.find("HTTP/1.1 404"), std::string::npos);
  EXPECT_NE(unknown.find("Served models: a, b"), std::string::npos);
}

TEST_F(AppFixture, ApiKey) {
  ServerConfig c;
  c.api_key = "sekret";
  start(c);
  std::string body = R"({"model":"a","prompt":"x","max_tokens":1})";
  std::string none = request(post("/v1/completions", body));
  EXPECT_NE(none.find("HTTP/1.1 401"), std::string::npos);
  EXPECT_NE(none.find("authentication_error"), std::string::npos);
  EXPECT_NE(request(post("/v1/completions", body, "Authorization: Bearer wrong\r\n")).find("HTTP/1.1 401"), std::string::npos);
  EXPECT_NE(request(post("/v1/completions", body, "Authorization: Bearer sekret\r\n")).find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(request("GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").find("HTTP/1.1 401"), std::string::npos);
  // Health and metrics stay open unless configured otherwise.
  EXPECT_NE(request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").find("HTTP/1.1 200"), std::string::npos);
}

TEST_F(AppFixture, DisconnectMidStreamAbortsAndFreesPages) {
  start({});
  {
    tcp::socket s = connect();
    net::write(s, net::buffer(post("/v1/completions",
        R"({"model":"a","prompt":"long","max_tokens":2000,"ignore_eos":true,"stream":true,"temperature":0})")));
    char buf[512];
    s.read_some(net::buffer(buf));  // the stream started
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GT(metric("tandem_kv_pages_used{model=\"a\"}"), 0);
  }  // closed mid-stream
  double aborted = -1, pages = -1;
  for (int i = 0; i < 200; ++i) {
    aborted = metric("tandem_requests_total{model=\"a\",outcome=\"aborted\"}");
    pages = metric("tandem_kv_pages_used{model=\"a\"}");
    if (aborted == 1 && pages == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(aborted, 1);
  EXPECT_EQ(pages, 0);
}

TEST_F(AppFixture, RequestTimeoutIs504) {
  ServerConfig c;
  c.request_timeout_s = 0.2;
  start(c);
  std::string r = request(post("/v1/completions", R"({"model":"a","prompt":"x","max_tokens":2000,"ignore_eos":true})"));
  EXPECT_NE(r.find("HTTP/1.1 504"), std::string::npos) << r;
  EXPECT_EQ(metric("tandem_requests_total{model=\"a\",outcome=\"timeout\"}"), 1);
  EXPECT_EQ(metric("tandem_kv_pages_used{model=\"a\"}"), 0);
}

TEST_F(AppFixture, QueueFullIs429WithRetryAfter) {
  ServerConfig c;
  c.engine_cli.max_num_seqs = 1;
  c.engine_cli.max_queue = 1;
  start(c);
  // One running, one waiting; the third is refused.
  const std::string body = R"({"model":"a","prompt":"x","max_tokens":2000,"ignore_eos":true})";
  tcp::socket s1 = connect(), s2 = connect();
  net::write(s1, net::buffer(post("/v1/completions", body)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  net::write(s2, net::buffer(post("/v1/completions", body)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string r = request(post("/v1/completions", body));
  EXPECT_NE(r.find("HTTP/1.1 429"), std::string::npos) << r;
  EXPECT_NE(r.find("Retry-After: 1"), std::string::npos);
  // Model b is unaffected.
  EXPECT_NE(request(post("/v1/completions", R"({"model":"b","prompt":"x","max_tokens":2})")).find("HTTP/1.1 200"),
            std::string::npos);
}

TEST_F(AppFixture, ContextLengthErrorsHaveBothNumbers) {
  ServerConfig c;
  c.engine_cli.max_model_len = 32;
  start(c);
  std::string r = request(post("/v1/completions", R"({"model":"a","prompt":")" + std::string(40, 'x') + R"("})"));
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(r.find("maximum context length is 32 tokens"), std::string::npos) << r;
  EXPECT_NE(r.find("41 tokens"), std::string::npos) << r;
  std::string r2 = request(post("/v1/completions", R"({"model":"a","prompt":"hello","max_tokens":30})"));
  EXPECT_NE(r2.find("you requested 36 tokens (6 in the prompt, 30 for the completion)"), std::string::npos) << r2;
  EXPECT_NE(r2.find("\"param\":\"max_tokens\""), std::string::npos);
  std::string r3 = request(post("/v1/completions", R"({"model":"a","prompt":[1,2,999]})"));
  EXPECT_NE(r3.find("token id 999 in 'prompt' is out of range"), std::string::npos) << r3;
}

TEST_F(AppFixture, StartingIs503AndOneBrokenModelLeavesTheOther) {
  ServerConfig c;
  ASSERT_TRUE(add_model_flag("good=echo", &c).ok());
  ASSERT_TRUE(add_model_flag("bad=/no/such/folder", &c).ok());
  ASSERT_TRUE(add_model_flag("slow=echo", &c).ok());
  auto factory = [](const std::string& name, const std::string& path, const EngineOptions& o)
      -> StatusOr<std::unique_ptr<ModelService>> {
    if (name == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    return testing::make_echo_service(name, path, o);
  };
  start(c, factory, /*wait=*/false);
  std::string health = request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(health.find("HTTP/1.1 503"), std::string::npos) << health;
  EXPECT_NE(health.find("\"status\":\"starting\""), std::string::npos) << health;
  std::string slow = request(post("/v1/completions", R"({"model":"slow","prompt":"x"})"));
  EXPECT_NE(slow.find("HTTP/1.1 503"), std::string::npos) << slow;
  EXPECT_NE(slow.find("is starting"), std::string::npos);
  // "good" and "bad" load in the background too: wait (bounded) until neither is
  // starting, so a loaded machine cannot race the checks below.
  for (int i = 0; i < 100; ++i) {
    std::string h = request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    if (h.find("\"name\":\"good\",\"state\":\"starting\"") == std::string::npos &&
        h.find("\"name\":\"bad\",\"state\":\"starting\"") == std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string bad = request(post("/v1/completions", R"({"model":"bad","prompt":"x"})"));
  EXPECT_NE(bad.find("HTTP/1.1 503"), std::string::npos);
  EXPECT_NE(bad.find("DIR must be 'echo'"), std::string::npos) << bad;
  EXPECT_NE(request(post("/v1/completions", R"({"model":"good","prompt":"x","max_tokens":1})")).find("HTTP/1.1 200"),
            std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  health = request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(health.find("\"status\":\"degraded\""), std::string::npos) << health;
  // An engine that breaks is reported and refuses work; the other models serve on.
  std::string boom = request(post("/v1/completions", R"({"model":"good","prompt":"__fail_engine__"})"));
  EXPECT_NE(boom.find("HTTP/1.1 503"), std::string::npos) << boom;
  health = request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(health.find("\"state\":\"unhealthy\""), std::string::npos) << health;
  EXPECT_NE(request(post("/v1/completions", R"({"model":"slow","prompt":"x","max_tokens":1})")).find("HTTP/1.1 200"),
            std::string::npos);
}

}  // namespace
}  // namespace tandem::server
