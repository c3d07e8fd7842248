// A fixed set of worker threads for data-parallel loops (one loop at a time).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem::cpu {

class ThreadPool {
 public:
  // num_threads <= 0: hardware concurrency. The caller's thread is worker 0.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // Splits [0, n) into contiguous chunks of at least `grain` items and runs
  // fn(begin, end) on them in parallel; returns when all are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker(int index);
  void run_chunks(int index);

  int num_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;     // GUARDED_BY(mu_)
  int pending_ = 0;             // GUARDED_BY(mu_) workers still running this generation
  bool stop_ = false;           // GUARDED_BY(mu_)
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int num_chunks_ = 0;
  std::mutex loop_mu_;          // one parallel_for at a time
};

}  // namespace tandem::cpu
