#include "bench/runner.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "common/log.h"

namespace tandem::bench {

namespace net = boost::asio;

namespace {

// Owns the schedule. Every member below is touched only on strand_.
class Dispatcher : public std::enable_shared_from_this<Dispatcher> {
 public:
  Dispatcher(net::io_context& ioc, const StreamTarget& target, const std::vector<PlannedRequest>& requests,
             const std::vector<double>& arrival_s, const RunConfig& config)
      : ioc_(ioc),
        strand_(net::make_strand(ioc)),
        timer_(strand_),
        target_(target),
        requests_(requests),
        arrival_s_(arrival_s),
        config_(config),
        results_(requests.size()) {}

  void start(Clock::time_point run_start) {
    run_start_ = run_start;
    net::post(strand_, [self = shared_from_this()] { self->arrive(); });
  }

  std::atomic<int> completed{0}, failed{0}, in_flight{0};
  std::vector<RequestResult>& results() { return results_; }
  Clock::time_point end_time() const { return end_time_; }

 private:
  // Moves every request whose arrival time has come to the queue, then waits for the next.
  void arrive() {
    const auto now = Clock::now();
    while (next_ < requests_.size() && run_start_ + to_duration(arrival_s_[next_]) <= now) pending_.push_back(next_++);
    launch_ready();
    if (next_ < requests_.size()) {
      timer_.expires_at(run_start_ + to_duration(arrival_s_[next_]));
      timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->arrive();
      });
    }
  }

  void launch_ready() {
    while (!pending_.empty() && (config_.max_concurrency == 0 || in_flight < config_.max_concurrency)) {
      size_t i = pending_.front();
      pending_.pop_front();
      ++in_flight;
      RequestResult seed;
      seed.index = static_cast<int>(i);
      seed.model_index = requests_[i].model_index;
      seed.tokens_prompt = requests_[i].prompt_len;
      StreamRequestSpec spec{config_.target, requests_[i].body, config_.endpoint, config_.timeout_s};
      start_stream_request(net::make_strand(ioc_), target_, std::move(spec), run_start_, std::move(seed),
                           [self = shared_from_this()](RequestResult&& r) {
                             net::post(self->strand_, [self, r = std::move(r)]() mutable { self->done(std::move(r)); });
                           });
    }
  }

  void done(RequestResult&& r) {
    --in_flight;
    if (!r.success) ++failed;
    size_t i = static_cast<size_t>(r.index);
    results_[i] = std::move(r);
    if (++completed == static_cast<int>(requests_.size())) end_time_ = Clock::now();
    launch_ready();
  }

  static Clock::duration to_duration(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  net::io_context& ioc_;
  net::strand<net::io_context::executor_type> strand_;
  net::steady_timer timer_;
  const StreamTarget& target_;
  const std::vector<PlannedRequest>& requests_;
  const std::vector<double>& arrival_s_;
  RunConfig config_;
  std::vector<RequestResult> results_;
  std::deque<size_t> pending_;  // arrived, waiting for a concurrency slot
  size_t next_ = 0;             // next request to arrive
  Clock::time_point run_start_, end_time_;
};

}  // namespace

RunOutcome run_requests(const StreamTarget& target, const std::vector<PlannedRequest>& requests,
                        const std::vector<double>& arrival_s, const RunConfig& config, const ProgressFn& progress) {
  RunOutcome outcome;
  if (requests.empty()) return outcome;
  net::io_context ioc(config.threads);
  auto dispatcher = std::make_shared<Dispatcher>(ioc, target, requests, arrival_s, config);
  const auto run_start = Clock::now();
  dispatcher->start(run_start);

  std::mutex mu;
  std::condition_variable cv;
  int running = config.threads;
  std::vector<std::thread> threads;
  for (int t = 0; t < config.threads; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        try {
          ioc.run();
          break;
        } catch (const std::exception& e) {  // a handler threw: log it and keep the loop alive
          TANDEM_LOG(kError) << "bench: I/O thread: " << e.what();
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      --running;
      cv.notify_all();
    });
  }
  auto snapshot = [&](bool final) {
    ProgressState s;
    s.total = static_cast<int>(requests.size());
    s.completed = dispatcher->completed;
    s.failed = dispatcher->failed;
    s.in_flight = dispatcher->in_flight;
    s.elapsed_s = std::chrono::duration<double>(Clock::now() - run_start).count();
    s.final = final;
    return s;
  };
  {
    std::unique_lock<std::mutex> lock(mu);
    while (running > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      if (running > 0 && progress) progress(snapshot(false));
    }
  }
  for (auto& t : threads) t.join();
  // end_time is unset only if a handler threw and a request never finished.
  auto end = dispatcher->end_time() == Clock::time_point{} ? Clock::now() : dispatcher->end_time();
  outcome.duration_s = std::chrono::duration<double>(end - run_start).count();
  if (progress) {
    auto s = snapshot(true);
    s.elapsed_s = outcome.duration_s;
    progress(s);
  }
  outcome.results = std::move(dispatcher->results());
  return outcome;
}

ProgressFn make_progress_printer(std::FILE* out, bool is_tty, std::string label) {
  struct State {
    int last_decile = -1;
    double last_line_s = 0;
  };
  auto state = std::make_shared<State>();
  return [out, is_tty, label = std::move(label), state](const ProgressState& s) {
    double frac = s.total ? static_cast<double>(s.completed) / s.total : 1.0;
    double rps = s.elapsed_s > 0 ? s.completed / s.elapsed_s : 0;
    if (is_tty) {
      constexpr int kWidth = 30;
      int filled = static_cast<int>(frac * kWidth);
      std::string bar(filled, '#');
      bar.append(kWidth - filled, '.');
      std::fprintf(out, "\r%s[%s] %d/%d done, %d failed, %d in flight, %.1f s, %.2f req/s\x1b[K", label.c_str(),
                   bar.c_str(), s.completed, s.total, s.failed, s.in_flight, s.elapsed_s, rps);
      if (s.final) std::fprintf(out, "\n");
      std::fflush(out);
      return;
    }
    int decile = static_cast<int>(frac * 10);
    // A line at each tenth done, at least every 10 s, and at the end.
    if (decile == state->last_decile && !s.final && s.elapsed_s - state->last_line_s < 10) return;
    if (s.final && decile == state->last_decile && state->last_decile == 10) return;
    state->last_decile = decile;
    state->last_line_s = s.elapsed_s;
    std::fprintf(out, "%sprogress: %d/%d done, %d failed, %d in flight, %.1f s, %.2f req/s\n", label.c_str(),
                 s.completed, s.total, s.failed, s.in_flight, s.elapsed_s, rps);
    std::fflush(out);
  };
}

}  // namespace tandem::bench
