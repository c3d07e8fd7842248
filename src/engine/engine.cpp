#include "engine/engine.h"

#include <algorithm>
#include <span>
#include <string>

#include "common/check.h"
#include "common/log.h"
#include "sampling/backend_sample.h"

namespace tandem {
namespace {

// Sequence order key: arrival, then choice index (n is at most max_num_seqs < 2^16).
constexpr int64_t kChoiceSlots = 1 << 16;

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// The prompt's last ids: context for the detokenizer, so the first output
// token's text continues the prompt (5, as vLLM's incremental detokenizer).
std::span<const int32_t> prompt_tail(const Sequence& seq) {
  const int n = std::min(seq.num_prompt_tokens, 5);
  return std::span<const int32_t>(seq.tokens).subspan(seq.num_prompt_tokens - n, n);
}

std::string num(double x) {
  std::string s = std::to_string(x);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

Status EngineConfig::validate() const {
  RETURN_IF_ERROR(cache.validate());
  RETURN_IF_ERROR(scheduler.validate());
  if (scheduler.max_num_seqs >= kChoiceSlots)
    return invalid_argument("max_num_seqs " + std::to_string(scheduler.max_num_seqs) + " >= 65536");
  if (max_logprobs < 0) return invalid_argument("max_logprobs " + std::to_string(max_logprobs) + " < 0");
  return ok_status();
}

StatusOr<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config, ModelRunner* runner,
                                                 const TextDecoder* decoder) {
  RETURN_IF_ERROR(config.validate());
  CHECK(runner != nullptr);
  if (runner->page_size() != config.cache.page_size)
    return invalid_argument("cache page_size " + std::to_string(config.cache.page_size) +
                            " differs from the model runner's " + std::to_string(runner->page_size()));
  if (config.kv_source != nullptr) {
    // Pages arrive chunk by chunk; the page-id space is every chunk of the pool.
    if (runner->num_pages() != config.kv_source->max_pages())
      return invalid_argument("the model runner has " + std::to_string(runner->num_pages()) +
                              " page ids but the shared KV pool gives this model " +
                              std::to_string(config.kv_source->max_pages()));
    if (config.scheduler.max_model_len <= 0)
      return invalid_argument("an engine on the shared KV pool needs an explicit max_model_len");
    return std::unique_ptr<Engine>(new Engine(config, runner, decoder, 0));
  }
  int num_pages = config.cache.num_pages > 0 ? config.cache.num_pages : runner->num_pages();
  if (num_pages > runner->num_pages())
    return invalid_argument("cache num_pages " + std::to_string(num_pages) + " exceeds the model runner's " +
                            std::to_string(runner->num_pages()));
  if (num_pages < 1) return invalid_argument("the KV pool has no pages");
  int capacity_tokens = num_pages * config.cache.page_size;
  if (config.scheduler.max_model_len > capacity_tokens)
    return invalid_argument("max_model_len " + std::to_string(config.scheduler.max_model_len) +
                            " needs more than the KV pool's " + std::to_string(num_pages) + " pages of " +
                            std::to_string(config.cache.page_size) + " tokens (" +
                            std::to_string(capacity_tokens) + " tokens)");
  return std::unique_ptr<Engine>(new Engine(config, runner, decoder, num_pages));
}

Engine::Engine(const EngineConfig& config, ModelRunner* runner, const TextDecoder* decoder, int num_pages)
    : config_(config),
      runner_(runner),
      decoder_(decoder),
      max_model_len_(config.scheduler.max_model_len > 0 ? config.scheduler.max_model_len
                                                        : num_pages * config.cache.page_size),
      vocab_size_(runner->vocab_size()),
      kv_(std::make_unique<KvCacheManager>(config.cache, num_pages, runner->num_pages())),
      scheduler_(std::make_unique<Scheduler>(config.scheduler, kv_.get())),
      seed_rng_(config.seed != 0 ? config.seed : std::random_device{}()) {
  batch_.page_size = config.cache.page_size;
  if (config.kv_source != nullptr) {
    kv_owner_ = std::make_unique<memory::BlockPoolChunkOwner<BlockPool>>(
        &kv_->pool(), [this](std::span<const int32_t> pages) { scheduler_->preempt_holders_of(pages); });
    scheduler_->set_grow([this] {
      switch (config_.kv_source->grow(*kv_owner_)) {
        case memory::AcquireStatus::kOk: return GrowResult::kAdded;
        case memory::AcquireStatus::kLater: return GrowResult::kLater;
        case memory::AcquireStatus::kExhausted: break;
      }
      return GrowResult::kNone;
    });
  }
}

Engine::~Engine() {
  give_back_arbiter_turn();
  // Chunks stay held by this model in the pool; the server releases the pool after every engine.
}

void Engine::service_kv() {
  if (kv_owner_) config_.kv_source->service(*kv_owner_);
}

Status Engine::check_request(const GenerateRequest& r) const {
  const SamplingParams& p = r.sampling;
  const int len = static_cast<int>(r.prompt_token_ids.size());
  if (r.request_id.empty()) return invalid_argument("request_id is empty");
  if (len == 0) return invalid_argument("prompt is empty (0 tokens)");
  if (len > max_model_len_)
    return invalid_argument("prompt has " + std::to_string(len) + " tokens, more than max_model_len " +
                            std::to_string(max_model_len_));
  for (int i = 0; i < len; ++i) {
    int32_t id = r.prompt_token_ids[i];
    if (id < 0 || id >= vocab_size_)
      return invalid_argument("prompt token " + std::to_string(i) + " is " + std::to_string(id) +
                              ", outside the vocabulary [0, " + std::to_string(vocab_size_) + ")");
  }
  if (p.max_tokens < 1) return invalid_argument("max_tokens " + std::to_string(p.max_tokens) + " < 1");
  if (static_cast<int64_t>(len) + p.max_tokens > max_model_len_)
    return invalid_argument("prompt (" + std::to_string(len) + " tokens) + max_tokens (" +
                            std::to_string(p.max_tokens) + ") = " + std::to_string(int64_t{len} + p.max_tokens) +
                            " exceeds max_model_len " + std::to_string(max_model_len_));
  if (p.min_tokens < 0 || p.min_tokens > p.max_tokens)
    return invalid_argument("min_tokens " + std::to_string(p.min_tokens) + " not in [0, max_tokens " +
                            std::to_string(p.max_tokens) + "]");
  if (!(p.temperature >= 0.0f)) return invalid_argument("temperature " + num(p.temperature) + " < 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return invalid_argument("top_p " + num(p.top_p) + " not in (0, 1]");
  if (p.top_k < -1) return invalid_argument("top_k " + std::to_string(p.top_k) + " < -1");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return invalid_argument("min_p " + num(p.min_p) + " not in [0, 1]");
  if (!(p.repetition_penalty > 0.0f))
    return invalid_argument("repetition_penalty " + num(p.repetition_penalty) + " <= 0");
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    return invalid_argument("presence_penalty " + num(p.presence_penalty) + " not in [-2, 2]");
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    return invalid_argument("frequency_penalty " + num(p.frequency_penalty) + " not in [-2, 2]");
  if (p.logprobs < -1 || p.logprobs > config_.max_logprobs)
    return invalid_argument("logprobs " + std::to_string(p.logprobs) + " not in [-1, " +
                            std::to_string(config_.max_logprobs) + "]");
  if (p.n < 1 || p.n > config_.scheduler.max_num_seqs)
    return invalid_argument("n " + std::to_string(p.n) + " not in [1, max_num_seqs " +
                            std::to_string(config_.scheduler.max_num_seqs) + "]");
  if (!p.stop.empty() && decoder_ == nullptr)
    return invalid_argument("stop strings need a tokenizer; this engine has none (use stop_token_ids)");
  return ok_status();
}

Status Engine::add_request(GenerateRequest r) {
  RETURN_IF_ERROR(check_request(r));
  if (requests_.count(r.request_id)) return invalid_argument("duplicate request_id '" + r.request_id + "'");
  auto req = std::make_unique<Request>();
  req->request_id = r.request_id;
  req->sampling = std::move(r.sampling);
  req->sink = std::move(r.sink);
  req->seed = req->sampling.seed ? *req->sampling.seed : seed_rng_();
  req->arrival = next_arrival_++;
  auto seq = std::make_unique<Sequence>();
  seq->request = req.get();
  seq->order = req->arrival * kChoiceSlots;
  seq->num_prompt_tokens = static_cast<int>(r.prompt_token_ids.size());
  seq->tokens = std::move(r.prompt_token_ids);
  if (decoder_) {
    seq->decoder = decoder_->start_after(req->sampling.skip_special_tokens, prompt_tail(*seq));
    seq->stop = std::make_unique<StopChecker>(req->sampling.stop);
  }
  scheduler_->add_waiting(seq.get());
  req->seqs.push_back(std::move(seq));
  requests_.emplace(req->request_id, std::move(req));
  return ok_status();
}

void Engine::finish(Sequence* seq, FinishReason reason, std::string error) {
  CHECK(seq->finish == FinishReason::kNone);
  if (seq->status != SeqStatus::kFinished) scheduler_->remove(seq);  // frees its pages
  seq->finish = reason;
  seq->error = std::move(error);
  if (!seq->touched) touched_.push_back(seq);
  seq->touched = true;
}

bool Engine::abort_request(const std::string& request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  // Draws still in flight name sequences this may destroy: take them first.
  if (!in_flight_.empty()) {
    if (Status st = receive_in_flight(false); !st.ok()) {
      fail_step("engine sampling failed", st);
      return true;
    }
    it = requests_.find(request_id);
    if (it == requests_.end()) return true;  // ended on its last draw
  }
  for (auto& seq : it->second->seqs) {
    if (seq->finish == FinishReason::kNone) finish(seq.get(), FinishReason::kAbort);
  }
  deliver();
  if (!has_work()) give_back_arbiter_turn();
  return true;
}

void Engine::fail_all(const std::string& error) {
  in_flight_.clear();  // their draws are not waited for
  for (auto& [id, req] : requests_) {
    for (auto& seq : req->seqs) {
      if (seq->finish == FinishReason::kNone) finish(seq.get(), FinishReason::kError, error);
    }
  }
  deliver();
}

void Engine::build_batch() {
  const int ps = batch_.page_size;
  batch_.token_ids.clear();
  batch_.positions.clear();
  batch_.slot_mapping.clear();
  batch_.query_start.assign(1, 0);
  batch_.kv_len.clear();
  batch_.page_indptr.assign(1, 0);
  batch_.page_indices.clear();
  batch_.last_page_len.clear();
  batch_.logits_rows.clear();
  batch_.sampled_prefix = 0;
  logits_row_of_.clear();
  for (const ScheduledSeq& s : sched_out_.scheduled) {
    const Sequence* seq = s.seq;
    const int start = seq->num_computed;
    const int end = start + s.num_new;
    const int32_t* pages = seq->kv.pages.data();
    for (int pos = start; pos < end; ++pos) {
      batch_.token_ids.push_back(seq->tokens[pos]);
      batch_.positions.push_back(pos);
      int32_t page = pages[pos / ps];
      CHECK_GE(page, 0);
      batch_.slot_mapping.push_back(page * ps + pos % ps);
    }
    batch_.query_start.push_back(static_cast<int32_t>(batch_.token_ids.size()));
    batch_.kv_len.push_back(end);
    const int num_pages = (end + ps - 1) / ps;
    batch_.page_indices.insert(batch_.page_indices.end(), pages, pages + num_pages);
    batch_.page_indptr.push_back(static_cast<int32_t>(batch_.page_indices.size()));
    batch_.last_page_len.push_back(end - (num_pages - 1) * ps);
    if (end == static_cast<int>(seq->tokens.size())) {
      logits_row_of_.push_back(static_cast<int>(batch_.logits_rows.size()));
      batch_.logits_rows.push_back(static_cast<int32_t>(batch_.token_ids.size()) - 1);
    } else {
      logits_row_of_.push_back(-1);  // a prefill chunk
    }
  }
}

void Engine::fork_choices(Request* req, Sequence* parent) {
  scheduler_->on_fork(parent);
  req->forked = true;
  for (int c = 1; c < req->sampling.n; ++c) {
    auto seq = std::make_unique<Sequence>();
    seq->request = req;
    seq->choice_index = c;
    seq->order = req->arrival * kChoiceSlots + c;
    seq->tokens = parent->tokens;
    seq->num_prompt_tokens = parent->num_prompt_tokens;
    seq->num_computed = parent->num_computed;
    kv_->fork(parent->kv, &seq->kv);  // shares the prompt's pages (copy-on-write later)
    if (decoder_) {
      seq->decoder = decoder_->start_after(req->sampling.skip_special_tokens, prompt_tail(*seq));
      seq->stop = std::make_unique<StopChecker>(req->sampling.stop);
    }
    scheduler_->add_running(seq.get());
    req->seqs.push_back(std::move(seq));
  }
}

void Engine::on_token(Sequence* seq, const TokenOutput& token) {
  const SamplingParams& p = seq->request->sampling;
  seq->tokens.push_back(token.token_id);
  seq->pending_tokens.push_back(token);
  if (!seq->touched) touched_.push_back(seq);
  seq->touched = true;
  const int n_out = seq->num_outputs();
  const bool can_stop = n_out >= p.min_tokens;
  auto flush_text = [&] {
    if (!seq->decoder) return;
    seq->pending_text += seq->stop->add(seq->decoder->finish(), can_stop);
    if (!seq->stop->stopped()) seq->pending_text += seq->stop->flush(can_stop);
  };
  if (can_stop && ((!p.ignore_eos && contains(config_.eos_token_ids, token.token_id)) ||
                   contains(p.stop_token_ids, token.token_id))) {
    flush_text();  // the stop token's own text is not part of the output
    finish(seq, FinishReason::kStop);
    return;
  }
  if (seq->decoder) {
    seq->pending_text += seq->stop->add(seq->decoder->push(token.token_id), can_stop);
    if (seq->stop->stopped()) {
      finish(seq, FinishReason::kStop);
      return;
    }
  }
  if (n_out >= p.max_tokens || static_cast<int>(seq->tokens.size()) >= max_model_len_) {
    flush_text();
    finish(seq, FinishReason::kLength);
  }
}

void Engine::emit(Sequence* seq) {
  Request* req = seq->request;
  RequestEvent ev;
  ev.choice_index = seq->choice_index;
  ev.tokens = std::move(seq->pending_tokens);
  ev.text = std::move(seq->pending_text);
  seq->pending_tokens.clear();
  seq->pending_text.clear();
  ev.finish = seq->finish;
  ev.error = seq->error;
  if (seq->finish != FinishReason::kNone) {
    ++req->num_finished;
    const bool early = !req->forked && (seq->finish == FinishReason::kAbort || seq->finish == FinishReason::kError);
    const int expected = req->forked ? req->sampling.n : 1;
    ev.request_done = early || req->num_finished == expected;
    // Ended before the other choices existed: each of them still gets its one finish event.
    for (int c = 1; early && c < req->sampling.n; ++c) {
      RequestEvent other;
      other.choice_index = c;
      other.finish = seq->finish;
      other.error = seq->error;
      if (req->sink) req->sink(std::move(other));
    }
  }
  if (ev.request_done) {
    ev.num_prompt_tokens = req->seqs[0]->num_prompt_tokens;
    ev.num_cached_prompt_tokens = std::max(0, req->num_cached_prompt_tokens);
    for (const auto& s : req->seqs) ev.num_output_tokens += s->num_outputs();
  }
  if (req->sink) req->sink(std::move(ev));
}

void Engine::deliver() {
  // touched_ may grow only through finish()/on_token(), never during delivery.
  for (size_t i = 0; i < touched_.size(); ++i) {
    Sequence* seq = touched_[i];
    seq->touched = false;
    Request* req = seq->request;
    emit(seq);
    const int expected = req->forked ? req->sampling.n : 1;
    bool done = req->num_finished == expected ||
                (!req->forked && req->num_finished > 0);
    if (done) requests_.erase(req->request_id);  // destroys its sequences
  }
  touched_.clear();
}

// Overlapped steps (ModelRunner::overlaps_steps): the engine queues step k + 1
// before it reads step k's draws, so the device never waits for the host's
// bookkeeping between steps. Step k + 1 takes those draws on the device
// (ForwardBatch::sampled_prefix) while the host holds a placeholder in each
// sequence's tokens. A sequence qualifies when nothing of step k + 1 depends
// on the value of its draw: one choice, greedy on the backend, no penalties
// (they count output ids), and the draw cannot end it by length. One that ends
// on the draw (a stop token or string) had step k + 1 computed for nothing.
bool Engine::may_draw_ahead(const Sequence& seq) const {
  const SamplingParams& p = seq.request->sampling;
  return seq.finish == FinishReason::kNone && seq.status == SeqStatus::kRunning && p.n == 1 &&
         backend_can_sample(p) && p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && seq.num_outputs() + 1 < p.max_tokens &&
         static_cast<int>(seq.tokens.size()) + 1 < max_model_len_;
}

bool Engine::overlap_allowed() const {
  // The arbiter and the shared pool act between steps (turns, reclaimed pages):
  // they see every step whole.
  return runner_->overlaps_steps() && config_.arbiter == nullptr && !kv_owner_;
}

// The draws of the step before, as on_token() would have taken them then.
// with_placeholders: each sequence holds a placeholder for its draw (an
// overlapped step was scheduled), replaced here.
Status Engine::receive_in_flight(bool with_placeholders) {
  std::vector<Sequence*> seqs;
  seqs.swap(in_flight_);
  Status st = runner_->wait_sample(&device_ids_);
  if (st.ok() && device_ids_.size() != seqs.size())
    st = internal_error("wait_sample returned " + std::to_string(device_ids_.size()) + " ids for " +
                        std::to_string(seqs.size()) + " draws");
  if (!st.ok()) return st;
  for (size_t i = 0; i < seqs.size(); ++i) {
    Sequence* seq = seqs[i];
    if (with_placeholders) seq->tokens.pop_back();
    if (seq->finish != FinishReason::kNone) continue;
    TokenOutput out;
    out.token_id = device_ids_[i];
    on_token(seq, std::move(out));
  }
  return ok_status();
}

Status Engine::step() {
  bool overlap = !in_flight_.empty() && overlap_allowed() &&
                 std::all_of(in_flight_.begin(), in_flight_.end(), [&](Sequence* s) { return may_draw_ahead(*s); });
  if (!in_flight_.empty() && !overlap) {
    if (Status st = receive_in_flight(false); !st.ok()) return fail_step("engine sampling failed", st);
  }
  if (overlap) {
    for (Sequence* seq : in_flight_) seq->tokens.push_back(0);  // the draw, on the device
  }
  service_kv();
  int max_tokens = config_.scheduler.max_num_batched_tokens;
  if (config_.arbiter != nullptr)  // shorter while another model waits for the GPU (memory/arbiter.h)
    max_tokens = static_cast<int>(config_.arbiter->step_tokens(config_.arbiter_model, max_tokens));
  scheduler_->schedule(&sched_out_, max_tokens);
  for (Sequence* seq : sched_out_.failed) {
    const int need = kv_->pages_for(static_cast<int>(seq->tokens.size()));
    finish(seq, FinishReason::kError,
           "sequence needs " + std::to_string(need) + " KV pages of " + std::to_string(kv_->page_size()) +
               " tokens but the pool has only " + std::to_string(kv_->pool().num_online()) + " online");
  }
  if (overlap) {
    // The draws feed this step on the device only as its first tokens, in row
    // order; otherwise (a sequence preempted or failed above, a new order) the
    // host takes them first and the step is built from the real ids.
    bool prefix = sched_out_.scheduled.size() >= in_flight_.size();
    for (size_t i = 0; prefix && i < in_flight_.size(); ++i) {
      const ScheduledSeq& s = sched_out_.scheduled[i];
      prefix = s.seq == in_flight_[i] && s.num_new == 1 && s.seq->finish == FinishReason::kNone;
    }
    if (!prefix) {
      overlap = false;
      if (Status st = receive_in_flight(true); !st.ok()) return fail_step("engine sampling failed", st);
      std::erase_if(sched_out_.scheduled, [](const ScheduledSeq& s) { return s.seq->finish != FinishReason::kNone; });
    }
  }
  if (sched_out_.scheduled.empty()) {
    deliver();
    give_back_arbiter_turn();
    return ok_status();
  }
  build_batch();
  batch_.sampled_prefix = overlap ? static_cast<int>(in_flight_.size()) : 0;
  if (config_.arbiter != nullptr) {
    config_.arbiter->begin_step(config_.arbiter_model, sched_out_.num_tokens);
    // Overlapping steps (--concurrent-steps 2): the least served model's kernels go first.
    runner_->set_step_priority(config_.arbiter->urgent(config_.arbiter_model));
  }
  // Sample on the backend (only ids come back) unless a request wants logprobs,
  // which need its logits row on the host.
  bool on_backend = runner_->samples_on_backend();
  for (const ScheduledSeq& s : sched_out_.scheduled) on_backend = on_backend && backend_can_sample(s.seq->request->sampling);
  Status st;
  if (!sched_out_.copies.empty()) st = runner_->copy_pages(sched_out_.copies);
  if (st.ok()) st = on_backend ? runner_->forward_keep(batch_) : runner_->forward(batch_, &logits_);
  if (!st.ok()) return fail_step("engine step failed", st);
  if (!on_backend) CHECK_EQ(logits_.size(), batch_.logits_rows.size() * static_cast<size_t>(vocab_size_));
  // While this step runs: the last step's draws (a sequence may end on its
  // draw; this step then computed it for nothing, and it is skipped below).
  if (overlap) {
    if (Status rs = receive_in_flight(true); !rs.ok()) return fail_step("engine sampling failed", rs);
  }
  scheduler_->on_forward_done(sched_out_);
  device_sample_.rows.clear();
  device_sample_.penalties.clear();
  device_targets_.clear();
  for (size_t i = 0; i < sched_out_.scheduled.size(); ++i) {
    Sequence* seq = sched_out_.scheduled[i].seq;
    const int row = logits_row_of_[i];
    if (row < 0 || seq->finish != FinishReason::kNone) continue;  // a prefill chunk, or ended
    std::span<const float> row_logits;
    if (!on_backend) row_logits = std::span<const float>(logits_.data() + row * vocab_size_, vocab_size_);
    Request* req = seq->request;
    targets_.assign(1, seq);
    if (req->sampling.n > 1 && !req->forked) {
      fork_choices(req, seq);
      for (size_t c = 1; c < req->seqs.size(); ++c) targets_.push_back(req->seqs[c].get());
    }
    // The row serves this sequence and, right after the prompt, its new siblings.
    for (Sequence* target : targets_) {
      const SamplingParams& p = req->sampling;
      banned_.clear();
      if (target->num_outputs() < p.min_tokens) {
        if (!p.ignore_eos) banned_ = config_.eos_token_ids;
        banned_.insert(banned_.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
      }
      SamplingContext ctx;
      ctx.prompt_tokens = std::span<const int32_t>(target->tokens.data(), target->num_prompt_tokens);
      ctx.output_tokens = std::span<const int32_t>(target->tokens.data() + target->num_prompt_tokens,
                                                   target->num_outputs());
      ctx.banned_tokens = banned_;
      ctx.seed = req->seed;
      ctx.choice_index = target->choice_index;
      if (on_backend) {  // drawn below, in this order
        add_sample_row(p, ctx, row, &device_sample_);
        device_targets_.push_back(target);
        continue;
      }
      on_token(target, sample_token(p, ctx, row_logits, &scratch_));
    }
  }
  if (on_backend && !device_targets_.empty()) {
    if (overlap_allowed()) {
      // The draws come back during the next step (receive_in_flight).
      st = runner_->sample_async(&device_sample_);
      if (!st.ok()) return fail_step("engine sampling failed", st);
      in_flight_ = device_targets_;
    } else {
      st = runner_->sample(&device_sample_, &device_ids_);
      if (!st.ok()) return fail_step("engine sampling failed", st);
      for (size_t i = 0; i < device_targets_.size(); ++i) {
        TokenOutput out;
        out.token_id = device_ids_[i];
        on_token(device_targets_[i], std::move(out));
      }
    }
  }
  ++num_steps_;
  deliver();
  if (config_.arbiter != nullptr) {
    // EngineThread steps again at once while there is work: stay in the round.
    arbiter_continuing_ = has_work();
    config_.arbiter->end_step(config_.arbiter_model, arbiter_continuing_);
  }
  return ok_status();
}

// A runner error mid-step: ends the arbiter's turn and fails every request.
Status Engine::fail_step(const char* what, const Status& st) {
  if (config_.arbiter != nullptr) {
    arbiter_continuing_ = false;
    config_.arbiter->end_step(config_.arbiter_model, false);
  }
  last_error_ = st.to_string();
  TANDEM_LOG(kError) << what << ": " << last_error_;
  fail_all("model runner: " + last_error_);
  return st;
}

void Engine::give_back_arbiter_turn() {
  if (config_.arbiter == nullptr || !arbiter_continuing_) return;
  // The arbiter keeps a turn for an engine that said it would continue; hand
  // it back, or the other engines wait for a step that is not coming.
  config_.arbiter->begin_step(config_.arbiter_model, 0);
  config_.arbiter->end_step(config_.arbiter_model, false);
  arbiter_continuing_ = false;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.num_running = scheduler_->num_running();
  s.num_waiting = scheduler_->num_waiting();
  s.num_pages_total = kv_->pool().num_online();
  s.num_pages_used = kv_->pool().num_active();
  s.num_preemptions = scheduler_->num_preemptions();
  s.num_prefix_query_tokens = scheduler_->num_prefix_query_tokens();
  s.num_prefix_hit_tokens = scheduler_->num_prefix_hit_tokens();
  s.num_steps = num_steps_;
  if (config_.kv_source != nullptr) {
    const memory::KvChunkPool& pool = config_.kv_source->pool();
    const memory::ChunkPoolStats c = pool.stats(config_.kv_source->model());
    const int64_t per_chunk = config_.kv_source->pages_per_chunk();
    s.shared_kv = true;
    s.kv_pages_guaranteed = c.guaranteed * per_chunk;
    s.kv_pages_lent = c.lent * per_chunk;
    s.kv_pages_borrowed = c.borrowed * per_chunk;
  }
  if (config_.arbiter != nullptr) s.arbiter = config_.arbiter->stats(config_.arbiter_model);
  s.healthy = last_error_.empty();
  s.last_error = last_error_;
  return s;
}

}  // namespace tandem
