// Engine: one model's scheduler, KV bookkeeping and sampling, driven by step().
// Single-threaded; EngineThread (engine_thread.h) puts it behind EngineClient.
//
// step() = schedule -> one ModelRunner::forward over the whole mixed batch ->
// sample -> post-process (stop ids, eos, stop strings, lengths) -> events.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/api.h"
#include "engine/forward_batch.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "engine/text_decoder.h"
#include "kv/kv_cache_manager.h"
#include "memory/arbiter.h"
#include "memory/block_pool_owner.h"
#include "memory/kv_pool.h"
#include "sampling/sampler.h"

namespace tandem {

struct EngineConfig {
  CacheConfig cache;
  SchedulerConfig scheduler;
  std::vector<int32_t> eos_token_ids;  // any of these ends a choice (unless ignore_eos)
  uint64_t seed = 0;                   // draws seeds for requests without one; 0: random
  int max_logprobs = 20;               // largest SamplingParams::logprobs accepted
  // Shared KV pool (`serve --gpu-budget`, docs/memory.md): pages come and go by
  // whole chunks; the runner's page-id space must be kv_source->max_pages().
  // Null: the runner's pages, all online. Not owned; outlives the engine.
  memory::KvPageSource* kv_source = nullptr;
  // Shares GPU steps with other models' engines by weight; null: steps run at
  // once. Not owned; outlives the engine.
  memory::StepArbiter* arbiter = nullptr;
  int arbiter_model = 0;  // this engine's index in the arbiter (and the pool)
  Status validate() const;
};

class Engine {
 public:
  // The runner must outlive the engine; decoder may be null (token ids only,
  // no text and no stop strings).
  static StatusOr<std::unique_ptr<Engine>> create(const EngineConfig& config, ModelRunner* runner,
                                                   const TextDecoder* decoder);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Validates without touching state (safe to call from any thread on a const engine).
  Status check_request(const GenerateRequest& request) const;
  // check_request, then queued for admission (kInvalidArgument for a duplicate id).
  Status add_request(GenerateRequest request);
  // Frees the request's pages now; its sink gets kAbort. False if unknown.
  bool abort_request(const std::string& request_id);
  // Ends every request with kError (e.g. the runner failed).
  void fail_all(const std::string& error);

  // One iteration. Returns the runner's error, if any (every in-flight request
  // has then been ended with kError).
  Status step();
  // Shared KV pool only: takes delivered chunks and answers reclaim requests
  // (step() does it first; call it when woken while idle). No-op without a pool.
  void service_kv();
  bool has_work() const { return !requests_.empty(); }
  template <typename F>
  void for_each_request_id(F f) const {
    for (const auto& [id, req] : requests_) f(id);
  }

  EngineStats stats() const;
  int max_model_len() const { return max_model_len_; }
  int num_requests() const { return static_cast<int>(requests_.size()); }
  const EngineConfig& config() const { return config_; }
  Scheduler& scheduler() { return *scheduler_; }
  KvCacheManager& kv() { return *kv_; }
  const SchedulerOutput& last_schedule() const { return sched_out_; }

 private:
  Engine(const EngineConfig& config, ModelRunner* runner, const TextDecoder* decoder, int num_pages);

  void build_batch();
  void fork_choices(Request* req, Sequence* parent);
  void on_token(Sequence* seq, const TokenOutput& token);
  void finish(Sequence* seq, FinishReason reason, std::string error = {});
  void deliver();
  void emit(Sequence* seq);
  void give_back_arbiter_turn();
  Status fail_step(const char* what, const Status& st);
  bool overlap_allowed() const;
  bool may_draw_ahead(const Sequence& seq) const;
  Status receive_in_flight(bool with_placeholders);

  EngineConfig config_;
  ModelRunner* runner_;
  const TextDecoder* decoder_;
  int max_model_len_;
  int vocab_size_;
  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<memory::BlockPoolChunkOwner<BlockPool>> kv_owner_;  // with config_.kv_source
  bool arbiter_continuing_ = false;  // told the arbiter at the last end_step that more steps follow
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  std::vector<Sequence*> touched_;  // sequences with something to deliver
  std::mt19937_64 seed_rng_;
  int64_t next_arrival_ = 0;
  int64_t num_steps_ = 0;
  std::string last_error_;

  // Reused per step.
  SchedulerOutput sched_out_;
  ForwardBatch batch_;
  std::vector<float> logits_;
  SamplerScratch scratch_;
  std::vector<int32_t> banned_;
  std::vector<Sequence*> targets_;
  // Sampling on the runner's backend (ModelRunner::samples_on_backend): the draws
  // of one step, their sequences, the ids that come back.
  SampleBatch device_sample_;
  std::vector<Sequence*> device_targets_;
  std::vector<int32_t> device_ids_;
  std::vector<int> logits_row_of_;  // per scheduled sequence: its row of the step's logits, -1 if none
  // Overlapped steps: the sequences whose draws of the last step have not come
  // back yet, in row order (ModelRunner::sample_async).
  std::vector<Sequence*> in_flight_;
};

}  // namespace tandem
