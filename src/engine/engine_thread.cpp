#include "engine/engine_thread.h"

#include <chrono>

#include "common/check.h"

namespace tandem {

StatusOr<std::unique_ptr<EngineThread>> EngineThread::start(const EngineConfig& config, ModelRunner* runner,
                                                            const TextDecoder* decoder) {
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(config, runner, decoder));
  std::unique_ptr<EngineThread> t(new EngineThread(std::move(engine)));
  t->thread_ = std::thread([p = t.get()] { p->loop(); });
  return t;
}

EngineThread::EngineThread(std::unique_ptr<Engine> engine)
    : engine_(std::move(engine)),
      max_model_len_(engine_->max_model_len()),
      max_queue_len_(engine_->config().scheduler.max_queue_len) {
  stats_ = engine_->stats();
}

EngineThread::~EngineThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status EngineThread::submit(GenerateRequest request) {
  RETURN_IF_ERROR(engine_->check_request(request));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return unavailable("engine is shutting down");
  if (!stats_.healthy) return unavailable("engine is unhealthy: " + stats_.last_error);
  int waiting = static_cast<int>(incoming_.size()) + stats_.num_waiting;
  if (waiting >= max_queue_len_)
    return resource_exhausted("request queue is full: " + std::to_string(waiting) +
                              " requests waiting (max_queue_len " + std::to_string(max_queue_len_) + ")");
  if (!live_ids_.insert(request.request_id).second)
    return invalid_argument("duplicate request_id '" + request.request_id + "' is still in flight");
  // The wrapper forgets the id when the request's last event passes.
  EventSink user = std::move(request.sink);
  request.sink = [this, id = request.request_id, user = std::move(user)](RequestEvent&& ev) {
    bool done = ev.request_done;
    if (user) user(std::move(ev));
    if (done) {
      std::lock_guard<std::mutex> lock(mu_);
      live_ids_.erase(id);
    }
  };
  incoming_.push_back(std::move(request));
  cv_.notify_one();
  return ok_status();
}

void EngineThread::abort(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborts_.push_back(request_id);
  }
  cv_.notify_one();
}

void EngineThread::run_on_engine(std::function<void(Engine&)> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

EngineStats EngineThread::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.num_waiting += static_cast<int>(incoming_.size());
  return s;
}

void EngineThread::loop() {
  std::deque<GenerateRequest> incoming;
  std::vector<std::string> aborts;
  std::vector<std::function<void(Engine&)>> tasks;
  bool idle_step = false;  // the last step scheduled nothing although work exists
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return stopping_ || !incoming_.empty() || !aborts_.empty() || !tasks_.empty(); };
      if (!engine_->has_work()) {
        cv_.wait(lock, ready);
      } else if (idle_step) {
        // Nothing fits right now (pages withdrawn): wait for a change rather than spin.
        cv_.wait_for(lock, std::chrono::milliseconds(1), ready);
      }
      stopping = stopping_;
      incoming.swap(incoming_);
      aborts.swap(aborts_);
      tasks.swap(tasks_);
    }
    for (auto& r : incoming) {
      if (stopping) {
        RequestEvent ev;
        ev.finish = FinishReason::kAbort;
        ev.request_done = true;
        ev.num_prompt_tokens = static_cast<int>(r.prompt_token_ids.size());
        if (r.sink) r.sink(std::move(ev));
        continue;
      }
      EventSink sink = r.sink;
      Status st = engine_->add_request(std::move(r));
      if (!st.ok() && sink) {
        RequestEvent ev;
        ev.finish = FinishReason::kError;
        ev.error = st.message();
        ev.request_done = true;
        sink(std::move(ev));
      }
    }
    incoming.clear();
    for (const auto& id : aborts) engine_->abort_request(id);
    aborts.clear();
    for (auto& task : tasks) task(*engine_);
    tasks.clear();
    if (stopping) {
      while (engine_->has_work()) {
        // Abort whatever is left; each abort delivers its kAbort event.
        std::vector<std::string> ids;
        engine_->for_each_request_id([&](const std::string& id) { ids.push_back(id); });
        for (const auto& id : ids) engine_->abort_request(id);
      }
      return;
    }
    idle_step = false;
    if (engine_->has_work()) {
      int64_t before = engine_->stats().num_steps;
      Status st = engine_->step();
      idle_step = st.ok() && engine_->has_work() && engine_->stats().num_steps == before;
    }
    EngineStats s = engine_->stats();
    std::lock_guard<std::mutex> lock(mu_);
    stats_ = s;
  }
}

}  // namespace tandem
