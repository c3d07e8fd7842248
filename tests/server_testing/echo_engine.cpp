#include "server_testing/echo_engine.h"

#include <algorithm>
#include <chrono>

namespace tandem::testing {
namespace {

uint64_t splitmix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Longest suffix of `text` that is a proper prefix of some stop string: held back.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

// End of the last complete UTF-8 character at or before `end`.
size_t utf8_boundary(const std::string& text, size_t end) {
  size_t i = end;
  int back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++back;
  }
  if (i == 0) return end;
  unsigned char lead = static_cast<unsigned char>(text[i - 1]);
  int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (need == 1) return end;
  return (back + 1 >= need) ? end : i - 1;
}

}  // namespace

EchoEngine::EchoEngine(const Tokenizer* tokenizer, EchoEngineOptions options)
    : tokenizer_(tokenizer), options_(std::move(options)) {
  stats_.num_pages_total = options_.num_pages;
  thread_ = std::thread([this] { loop(); });
}

EchoEngine::~EchoEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status EchoEngine::submit(GenerateRequest request) {
  const int len = static_cast<int>(request.prompt_token_ids.size());
  if (len == 0) return invalid_argument("the prompt is empty");
  if (len >= options_.max_model_len) {
    return invalid_argument("the prompt has " + std::to_string(len) + " tokens; max_model_len is " +
                            std::to_string(options_.max_model_len));
  }
  auto g = std::make_unique<Group>();
  std::string text = tokenizer_->decode(request.prompt_token_ids, /*skip_special_tokens=*/true);
  g->fail = text.find("__fail_request__") != std::string::npos;
  const bool fail_engine = text.find("__fail_engine__") != std::string::npos;
  for (int32_t id : request.prompt_token_ids) {
    if (!tokenizer_->is_special(id)) g->source.push_back(id);
  }
  if (g->source.empty()) g->source.push_back('x');
  g->choices.resize(request.sampling.n);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!stats_.healthy) return unavailable("engine is unhealthy: " + stats_.last_error);
  if (fail_engine) {
    stats_.healthy = false;
    stats_.last_error = "injected engine failure";
    return unavailable("engine is unhealthy: " + stats_.last_error);
  }
  if (static_cast<int>(waiting_.size()) >= options_.max_queue) {
    return resource_exhausted("the queue is full (" + std::to_string(options_.max_queue) + " waiting requests)");
  }
  uint64_t seed = request.sampling.seed ? *request.sampling.seed : seed_counter_++;
  for (size_t k = 0; k < g->choices.size(); ++k) g->choices[k].rng = seed * 1000003ULL + k;
  g->request = std::move(request);
  waiting_.push_back(std::move(g));
  stats_.num_waiting = static_cast<int>(waiting_.size());
  cv_.notify_one();
  return ok_status();
}

void EchoEngine::abort(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  aborts_.insert(request_id);
  cv_.notify_one();
}

EngineStats EchoEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

bool EchoEngine::step_group(Group& g, std::vector<std::pair<EventSink*, RequestEvent>>* out) {
  const SamplingParams& sp = g.request.sampling;
  const int prompt_len = static_cast<int>(g.request.prompt_token_ids.size());
  bool all_done = true;
  int total_output = 0;
  for (size_t k = 0; k < g.choices.size(); ++k) {
    Choice& c = g.choices[k];
    if (c.finish != FinishReason::kNone) {
      total_output += static_cast<int>(c.output.size());
      continue;
    }
    RequestEvent ev;
    ev.choice_index = static_cast<int>(k);
    if (g.fail) {
      c.finish = FinishReason::kError;
      ev.finish = FinishReason::kError;
      ev.error = "injected request failure";
    } else {
      const size_t j = c.output.size();
      int32_t token;
      if (sp.temperature == 0.0f) {
        token = g.source[j % g.source.size()];
      } else {
        token = 'a' + static_cast<int32_t>(splitmix(&c.rng) % 26);
      }
      const bool eos_allowed = !sp.ignore_eos && static_cast<int>(j) >= sp.min_tokens;
      if (j >= g.source.size() && eos_allowed && !options_.eos_ids.empty()) token = options_.eos_ids[0];
      TokenOutput t;
      t.token_id = token;
      if (sp.logprobs >= 0) {
        t.logprob = -0.25f * static_cast<float>(j % 4 + 1);
        for (int a = 0; a < sp.logprobs; ++a) {
          t.top.push_back({a == 0 ? token : (token + a) % 256, t.logprob - static_cast<float>(a)});
        }
      }
      c.output.push_back(token);
      ev.tokens.push_back(t);
      const bool is_eos = std::find(options_.eos_ids.begin(), options_.eos_ids.end(), token) != options_.eos_ids.end();
      const bool is_stop_id =
          std::find(sp.stop_token_ids.begin(), sp.stop_token_ids.end(), token) != sp.stop_token_ids.end();
      if ((is_eos && eos_allowed) || (is_stop_id && static_cast<int>(j) >= sp.min_tokens)) {
        c.finish = FinishReason::kStop;
      } else {
        int32_t one[1] = {token};
        c.text += tokenizer_->decode(std::span<const int32_t>(one, 1), sp.skip_special_tokens);
        // Stop strings: search the new tail; the text before a match is the output.
        size_t stop_at = std::string::npos;
        for (const auto& s : sp.stop) {
          size_t from = c.emitted > s.size() ? c.emitted - s.size() : 0;
          size_t pos = c.text.find(s, from);
          if (pos != std::string::npos && pos < stop_at) stop_at = pos;
        }
        if (stop_at != std::string::npos && static_cast<int>(j) >= sp.min_tokens) {
          c.text.resize(stop_at);
          c.finish = FinishReason::kStop;
        } else if (static_cast<int>(c.output.size()) >= sp.max_tokens ||
                   prompt_len + static_cast<int>(c.output.size()) >= options_.max_model_len) {
          c.finish = FinishReason::kLength;
        }
      }
      size_t end = c.text.size();
      if (c.finish == FinishReason::kNone) {
        end -= held_back(c.text, sp.stop);
        end = utf8_boundary(c.text, end);
      }
      if (end > c.emitted) {
        ev.text = c.text.substr(c.emitted, end - c.emitted);
        c.emitted = end;
      }
      ev.finish = c.finish;
      // KV pages: one more token in the cache.
      const int need = pages_for(prompt_len + static_cast<int>(c.output.size()));
      if (need > c.num_pages) {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.num_pages_used += need - c.num_pages;
        c.num_pages = need;
      }
    }
    if (c.finish != FinishReason::kNone) {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.num_pages_used -= c.num_pages;
      c.num_pages = 0;
      --running_choices_;
    } else {
      all_done = false;
    }
    total_output += static_cast<int>(c.output.size());
    out->emplace_back(&g.request.sink, std::move(ev));
  }
  if (all_done && !out->empty()) {
    RequestEvent& last = out->back().second;
    last.request_done = true;
    last.num_prompt_tokens = prompt_len;
    last.num_output_tokens = total_output;
  }
  return all_done;
}

void EchoEngine::loop() {
  std::vector<std::pair<EventSink*, RequestEvent>> events;
  std::vector<std::unique_ptr<Group>> finished;
  while (true) {
    std::unordered_set<std::string> aborts;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !waiting_.empty() || !running_.empty() || !aborts_.empty(); });
      if (stop_) break;
      aborts.swap(aborts_);
      // Aborted while waiting: answered now, never scheduled.
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (aborts.count((*it)->request.request_id)) {
          RequestEvent ev;
          ev.finish = FinishReason::kAbort;
          ev.request_done = true;
          ev.num_prompt_tokens = static_cast<int>((*it)->request.prompt_token_ids.size());
          auto sink = std::move((*it)->request.sink);
          it = waiting_.erase(it);
          lock.unlock();
          sink(std::move(ev));
          lock.lock();
        } else {
          ++it;
        }
      }
      // Admit while there is room for the choices and their prompt pages.
      while (!waiting_.empty()) {
        Group& g = *waiting_.front();
        const int n = static_cast<int>(g.choices.size());
        const int pages = n * pages_for(static_cast<int>(g.request.prompt_token_ids.size()) + 1);
        if (running_choices_ + n > options_.max_num_seqs || stats_.num_pages_used + pages > options_.num_pages) break;
        running_choices_ += n;
        stats_.num_prefix_query_tokens += static_cast<int64_t>(g.request.prompt_token_ids.size());
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      stats_.num_waiting = static_cast<int>(waiting_.size());
      stats_.num_running = running_choices_;
      if (!stats_.healthy) {
        for (auto& g : running_) g->fail = true;
      }
    }
    // Aborts of running groups free their pages now (this step).
    for (auto& g : running_) {
      if (!aborts.count(g->request.request_id)) continue;
      int total = 0;
      for (auto& c : g->choices) {
        total += static_cast<int>(c.output.size());
        if (c.finish == FinishReason::kNone) {
          c.finish = FinishReason::kAbort;
          std::lock_guard<std::mutex> lock(mutex_);
          stats_.num_pages_used -= c.num_pages;
          c.num_pages = 0;
          --running_choices_;
        }
      }
      RequestEvent ev;
      ev.finish = FinishReason::kAbort;
      ev.request_done = true;
      ev.num_prompt_tokens = static_cast<int>(g->request.prompt_token_ids.size());
      ev.num_output_tokens = total;
      events.emplace_back(&g->request.sink, std::move(ev));
      finished.push_back(std::move(g));
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
    for (auto& g : running_) {
      if (step_group(*g, &events)) finished.push_back(std::move(g));
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.num_steps;
      stats_.num_running = running_choices_;
    }
    for (auto& [sink, ev] : events) (*sink)(std::move(ev));
    events.clear();
    finished.clear();  // drops the sinks (and what they hold) on this thread
    if (!running_.empty()) std::this_thread::sleep_for(std::chrono::microseconds(options_.step_us));
  }
  // Shutdown: every request still here ends as aborted.
  std::vector<std::unique_ptr<Group>> rest;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& g : waiting_) rest.push_back(std::move(g));
    waiting_.clear();
  }
  for (auto& g : running_) rest.push_back(std::move(g));
  running_.clear();
  for (auto& g : rest) {
    RequestEvent ev;
    ev.finish = FinishReason::kAbort;
    ev.request_done = true;
    g->request.sink(std::move(ev));
  }
}

}  // namespace tandem::testing
