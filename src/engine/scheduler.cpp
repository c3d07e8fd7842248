#include "engine/scheduler.h"

#include <algorithm>
#include <string>

#include "common/check.h"

namespace tandem {

Status SchedulerConfig::validate() const {
  if (max_num_seqs < 1) return invalid_argument("max_num_seqs " + std::to_string(max_num_seqs) + " < 1");
  if (max_num_batched_tokens < 1)
    return invalid_argument("max_num_batched_tokens " + std::to_string(max_num_batched_tokens) + " < 1");
  if (max_model_len < 0) return invalid_argument("max_model_len " + std::to_string(max_model_len) + " < 0");
  if (max_queue_len < 1) return invalid_argument("max_queue_len " + std::to_string(max_queue_len) + " < 1");
  return ok_status();
}

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv) : config_(config), kv_(kv) {}

namespace {
bool by_order(const Sequence* a, const Sequence* b) { return a->order < b->order; }
}  // namespace

int Scheduler::seats_held(const Sequence* seq) {
  const Request* req = seq->request;
  return (req->sampling.n > 1 && !req->forked && seq->choice_index == 0) ? req->sampling.n - 1 : 0;
}

void Scheduler::erase_running(size_t index) {
  num_seats_held_ -= seats_held(running_[index]);
  running_.erase(running_.begin() + index);
}

void Scheduler::on_fork(Sequence* parent) {
  CHECK(parent->status == SeqStatus::kRunning);
  num_seats_held_ -= seats_held(parent);
}

void Scheduler::insert_running(Sequence* seq) {
  seq->status = SeqStatus::kRunning;  // waiting -> running
  num_seats_held_ += seats_held(seq);
  running_.insert(std::upper_bound(running_.begin(), running_.end(), seq, by_order), seq);
}

void Scheduler::insert_waiting(Sequence* seq) {
  seq->status = SeqStatus::kWaiting;
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, by_order), seq);
}

void Scheduler::add_waiting(Sequence* seq) { insert_waiting(seq); }

void Scheduler::add_running(Sequence* seq) { insert_running(seq); }

void Scheduler::remove(Sequence* seq) {
  if (seq->status == SeqStatus::kRunning) {
    auto it = std::find(running_.begin(), running_.end(), seq);
    CHECK(it != running_.end());
    erase_running(it - running_.begin());
  } else if (seq->status == SeqStatus::kWaiting) {
    auto it = std::find(waiting_.begin(), waiting_.end(), seq);
    CHECK(it != waiting_.end());
    waiting_.erase(it);
  }
  kv_->free(&seq->kv);
  seq->status = SeqStatus::kFinished;  // running/waiting -> finished
}

void Scheduler::preempt(Sequence* seq) {
  kv_->free(&seq->kv);  // KV dropped; recomputed (or found in the prefix cache) on readmission
  seq->num_computed = 0;
  insert_waiting(seq);  // running -> waiting
  ++num_preemptions_;
}

AllocStatus Scheduler::can_allocate_growing(const SeqKv& kv, const PrefixHit* hit, int num_computed,
                                            int num_tokens, bool* stalled) {
  for (;;) {
    const AllocStatus st = kv_->can_allocate(kv, hit, num_computed, num_tokens);
    if (st == AllocStatus::kOk || !grow_) return st;
    const GrowResult g = grow_();
    if (g == GrowResult::kAdded) continue;
    if (g == GrowResult::kLater) *stalled = true;
    return st;
  }
}

void Scheduler::schedule(SchedulerOutput* out, int max_tokens) {
  CHECK_GT(max_tokens, 0);
  out->scheduled.clear();
  out->copies.clear();
  out->failed.clear();
  out->num_tokens = 0;
  out->num_preempted = 0;
  // Decodes left to serve among running_[i..]: their tokens are kept out of
  // any prompt chunk before them.
  int decodes_left = 0;
  for (const Sequence* seq : running_) decodes_left += seq->num_uncomputed() == 1 ? 1 : 0;
  int budget = config_.max_num_batched_tokens;
  if (max_tokens < budget) budget = std::max(max_tokens, std::min(decodes_left, budget));

  // Running sequences, oldest first; the newest give way when pages run out
  // (unless the shared pool is bringing more: then the rest wait a step).
  bool stalled = false;
  size_t i = 0;
  while (i < running_.size() && budget > 0 && !stalled) {
    Sequence* seq = running_[i];
    const bool decode = seq->num_uncomputed() == 1;
    if (decode) --decodes_left;
    const int num_new = std::min(seq->num_uncomputed(), decode ? budget : budget - decodes_left);
    if (num_new <= 0) {  // a prompt chunk with no room left beside the decodes after it
      ++i;
      continue;
    }
    int end = seq->num_computed + num_new;
    for (;;) {
      AllocStatus st = can_allocate_growing(seq->kv, nullptr, seq->num_computed, end, &stalled);
      if (stalled && st != AllocStatus::kOk) break;
      if (st == AllocStatus::kOk) {
        kv_->allocate(&seq->kv, nullptr, seq->num_computed, end, &out->copies);
        out->scheduled.push_back({seq, num_new});
        out->num_tokens += num_new;
        budget -= num_new;
        ++i;
        break;
      }
      if (st == AllocStatus::kImpossible) {
        erase_running(i);
        kv_->free(&seq->kv);
        seq->status = SeqStatus::kFinished;  // running -> finished (failed)
        out->failed.push_back(seq);
        break;
      }
      Sequence* victim = running_.back();  // kLater: preempt the newest
      if (victim != seq && victim->num_uncomputed() == 1) --decodes_left;
      erase_running(running_.size() - 1);
      preempt(victim);
      ++out->num_preempted;
      if (victim == seq) break;
    }
  }

  // Waiting sequences in FCFS order; a step that had to preempt admits none.
  while (out->num_preempted == 0 && !stalled && !waiting_.empty() && budget > 0 &&
         num_running() + num_seats_held_ < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    Request* req = seq->request;
    int seats = (req->sampling.n > 1 && !req->forked) ? req->sampling.n : 1;
    if (num_running() + num_seats_held_ + seats > config_.max_num_seqs) break;
    PrefixHit hit = kv_->find_prefix(&seq->kv, seq->tokens);
    int num_cached = hit.num_tokens(kv_->page_size());
    int num_new = std::min(static_cast<int>(seq->tokens.size()) - num_cached, budget);
    int end = num_cached + num_new;
    AllocStatus st = can_allocate_growing(seq->kv, &hit, num_cached, end, &stalled);
    if (st == AllocStatus::kLater || (stalled && st != AllocStatus::kOk)) break;  // FCFS: nobody overtakes the head
    waiting_.pop_front();
    if (st == AllocStatus::kImpossible) {
      seq->status = SeqStatus::kFinished;  // waiting -> finished (failed)
      out->failed.push_back(seq);
      continue;
    }
    kv_->allocate(&seq->kv, &hit, num_cached, end, &out->copies);
    seq->num_computed = num_cached;
    num_prefix_query_tokens_ += static_cast<int64_t>(seq->tokens.size());
    num_prefix_hit_tokens_ += num_cached;
    if (req->num_cached_prompt_tokens < 0) {
      req->num_cached_prompt_tokens = std::min(num_cached, seq->num_prompt_tokens);
    }
    insert_running(seq);
    out->scheduled.push_back({seq, num_new});
    out->num_tokens += num_new;
    budget -= num_new;
  }
}

void Scheduler::on_forward_done(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.scheduled) {
    Sequence* seq = s.seq;
    // Ended after it was scheduled (an overlapped step's sequence that stopped
    // on the token before): its pages are gone, nothing to record.
    if (seq->status == SeqStatus::kFinished) continue;
    seq->num_computed += s.num_new;
    CHECK_LE(seq->num_computed, static_cast<int>(seq->tokens.size()));
    kv_->on_computed(&seq->kv, seq->tokens, seq->num_computed);
  }
}

int Scheduler::withdraw_pages(std::span<const int32_t> ids) {
  if (kv_->pool().withdraw_pages(ids) == 0) return 0;
  preempt_holders_of(ids);
  return kv_->pool().num_draining();
}

void Scheduler::preempt_holders_of(std::span<const int32_t> pages) {
  std::vector<bool> wanted(kv_->pool().capacity(), false);
  for (int32_t p : pages) wanted[p] = true;
  // Newest first, so the oldest keep running where possible.
  for (size_t i = running_.size(); i-- > 0;) {
    Sequence* seq = running_[i];
    bool holds = std::any_of(seq->kv.pages.begin(), seq->kv.pages.end(),
                             [&](int32_t p) { return p >= 0 && wanted[p]; });
    if (!holds) continue;
    erase_running(i);
    preempt(seq);
  }
}

void Scheduler::add_pages(std::span<const int32_t> ids) { kv_->pool().add_pages(ids); }

}  // namespace tandem
