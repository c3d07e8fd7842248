// EngineThread: one model's Engine on its own thread, behind EngineClient.
// Callers on any thread submit and abort through a queue; the engine thread
// admits them between steps and calls each request's sink with its events.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/api.h"
#include "engine/engine.h"

namespace tandem {

class EngineThread : public EngineClient {
 public:
  // Starts the thread. runner and decoder (nullable) must outlive the object.
  static StatusOr<std::unique_ptr<EngineThread>> start(const EngineConfig& config, ModelRunner* runner,
                                                       const TextDecoder* decoder);
  // Stops the thread; requests still in flight get a kAbort event first.
  ~EngineThread() override;

  Status submit(GenerateRequest request) override;
  void abort(const std::string& request_id) override;
  EngineStats stats() const override;
  int max_model_len() const override { return max_model_len_; }

  // Runs `task` on the engine thread between two steps (the shared KV pool
  // uses it to add or withdraw pages: Scheduler::add_pages / withdraw_pages).
  void run_on_engine(std::function<void(Engine&)> task);

 private:
  explicit EngineThread(std::unique_ptr<Engine> engine);
  void loop();

  std::unique_ptr<Engine> engine_;  // touched by the engine thread only (check_request is const-safe)
  const int max_model_len_;
  const int max_queue_len_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerateRequest> incoming_;               // GUARDED_BY(mu_)
  std::vector<std::string> aborts_;                    // GUARDED_BY(mu_)
  std::vector<std::function<void(Engine&)>> tasks_;    // GUARDED_BY(mu_)
  std::unordered_set<std::string> live_ids_;           // GUARDED_BY(mu_) submitted, not yet done
  EngineStats stats_;                                  // GUARDED_BY(mu_) snapshot after each step
  bool stopping_ = false;                              // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace tandem
