// Scheduler: which tokens of which sequences run in the next forward pass.
//
// One list of running sequences and one of waiting ones, both kept in FCFS
// order (arrival, then choice). Each step first serves running sequences (a
// decode token, or the next chunk of a prompt), preempting the newest running
// sequence whenever pages run out (its KV is dropped and recomputed later),
// then admits waiting sequences while tokens, seats and pages allow. A running
// prompt's chunk leaves one token for each running decode after it, so a tight
// token limit shortens prefill chunks, never decodes. The output
// is, per sequence, how many of its uncomputed tokens run this step: prefill,
// chunked prefill, recompute and decode are the same thing.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/sequence.h"
#include "kv/kv_cache_manager.h"

namespace tandem {

struct SchedulerConfig {
  int max_num_seqs = 256;             // running sequences per step
  int max_num_batched_tokens = 2048;  // tokens per forward pass (prefill chunks + decodes)
  int max_model_len = 0;              // prompt + output; 0: the KV pool's whole capacity
  int max_queue_len = 1024;           // requests waiting to be admitted; more -> kResourceExhausted
  Status validate() const;
};

// What a page source answers when the pool runs short (shared KV pool).
enum class GrowResult {
  kAdded,  // pages were added: allocate again
  kLater,  // pages are on their way (another model is vacating): wait, do not preempt for them
  kNone,   // nothing to be had now: preempt or wait as with a fixed pool
};

struct ScheduledSeq {
  Sequence* seq;
  int num_new;  // tokens [seq->num_computed, + num_new) run this step
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> scheduled;  // in running order
  PageCopies copies;                    // copy-on-write, before the forward pass
  std::vector<Sequence*> failed;        // can never fit the pool as it is now
  int num_tokens = 0;
  int num_preempted = 0;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void add_waiting(Sequence* seq);           // a new request's first sequence
  void add_running(Sequence* seq);           // a choice forked from a running one
  // The n-1 seats held for a request's other choices are taken by them now
  // (call before the request is marked forked and the choices are added).
  void on_fork(Sequence* parent);
  // Finishes or aborts: frees the pages, drops it from both lists.
  void remove(Sequence* seq);

  // Fills *out (cleared first; reused to avoid allocations), with at most
  // max_num_batched_tokens tokens.
  void schedule(SchedulerOutput* out) { schedule(out, config_.max_num_batched_tokens); }
  // The same under a tighter limit for this step only (the step arbiter's
  // shared cap). Running decodes always fit: the limit is raised to their
  // number if needed (never past max_num_batched_tokens).
  void schedule(SchedulerOutput* out, int max_tokens);
  // After the forward pass: advances num_computed, publishes full blocks.
  void on_forward_done(const SchedulerOutput& out);

  // The shared pool takes pages back: preempts every sequence holding one.
  // Returns the number of pages still draining (0 once all are offline).
  int withdraw_pages(std::span<const int32_t> ids);
  void add_pages(std::span<const int32_t> ids);
  // Asked before preempting or waiting whenever pages run short (the engine
  // sets it when its pages come from the shared pool). Unset: a fixed pool.
  void set_grow(std::function<GrowResult()> grow) { grow_ = std::move(grow); }
  // Preempts every running sequence holding one of `pages` (newest first);
  // memory::BlockPoolChunkOwner's preempt_holders callback.
  void preempt_holders_of(std::span<const int32_t> pages);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_seats_held() const { return num_seats_held_; }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  int64_t num_prefix_query_tokens() const { return num_prefix_query_tokens_; }
  int64_t num_prefix_hit_tokens() const { return num_prefix_hit_tokens_; }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  void preempt(Sequence* seq);
  void insert_running(Sequence* seq);
  void insert_waiting(Sequence* seq);
  void erase_running(size_t index);
  static int seats_held(const Sequence* seq);
  // can_allocate, growing the pool first while it is short; *stalled is set
  // when pages are on their way (GrowResult::kLater).
  AllocStatus can_allocate_growing(const SeqKv& kv, const PrefixHit* hit, int num_computed, int num_tokens,
                                   bool* stalled);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::function<GrowResult()> grow_;
  std::vector<Sequence*> running_;  // sorted by order
  std::deque<Sequence*> waiting_;   // sorted by order
  int num_seats_held_ = 0;          // seats kept for choices not yet forked (n > 1)
  int64_t num_preemptions_ = 0;
  int64_t num_prefix_query_tokens_ = 0;
  int64_t num_prefix_hit_tokens_ = 0;
};

}  // namespace tandem
