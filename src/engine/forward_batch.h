// The contract between the engine (host-side scheduling, KV bookkeeping) and a
// model runner (the forward pass on some backend). Plain data, no device types.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "backend/backend.h"  // SampleBatch (no device types)
#include "common/status.h"

namespace tandem {

// One step's work: a flat list of tokens from several sequences (prefill chunks
// and decodes mixed). Per-sequence arrays are CSR-style (FlashInfer's page view).
struct ForwardBatch {
  int page_size = 16;                  // tokens per KV page
  std::vector<int32_t> token_ids;      // [num_tokens]
  std::vector<int32_t> positions;      // [num_tokens] absolute position in its sequence
  std::vector<int32_t> slot_mapping;   // [num_tokens] page_id * page_size + offset to write K/V
  std::vector<int32_t> query_start;    // [num_seqs + 1] offsets of each sequence's tokens
  std::vector<int32_t> kv_len;         // [num_seqs] tokens in the KV cache after this step
  std::vector<int32_t> page_indptr;    // [num_seqs + 1] offsets into page_indices
  std::vector<int32_t> page_indices;   // page ids in order; -1 marks a page freed because it
                                       // lies wholly outside the sliding window (never read)
  std::vector<int32_t> last_page_len;  // [num_seqs] valid tokens in each sequence's last page
  std::vector<int32_t> logits_rows;    // token indices (into token_ids) whose logits are wanted
  // Overlapped steps (ModelRunner::overlaps_steps): the first sampled_prefix
  // tokens are draws of the last sample_async(), rows 0 .. sampled_prefix - 1
  // in order, taken on the backend; their token_ids entries are placeholders.
  int sampled_prefix = 0;

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_seqs() const { return static_cast<int>(kv_len.size()); }
};

// A model bound to a backend with a KV cache of `num_pages` pages.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // One forward pass over the whole batch (never a loop of per-sequence calls).
  // Writes fp32 logits, row-major [batch.logits_rows.size(), vocab_size()].
  virtual Status forward(const ForwardBatch& batch, std::vector<float>* logits) = 0;
  // Copies whole KV pages (all layers), for copy-on-write of shared pages.
  virtual Status copy_pages(const std::vector<std::pair<int32_t, int32_t>>& src_dst) = 0;
  virtual int vocab_size() const = 0;
  virtual int num_pages() const = 0;
  virtual int page_size() const = 0;
  // Number of forward() calls so far (tests assert one per engine step).
  virtual int64_t num_forward_calls() const = 0;

  // Sampling on the backend (only token ids cross to the host), when the runner
  // offers it: forward_keep() is forward() with the logits left in backend
  // memory; sample() then draws one token per sample->rows entry, whose
  // logits_row indexes that forward's logits_rows.
  virtual bool samples_on_backend() const { return false; }
  virtual Status forward_keep(const ForwardBatch& batch);
  virtual Status sample(SampleBatch* sample, std::vector<int32_t>* ids);
  // Overlapped steps: sample_async() queues sample() and returns before the
  // draws exist, so the engine can queue the next forward (whose batch may
  // take them as ForwardBatch::sampled_prefix) before wait_sample() returns
  // them: the device never idles while the host handles a step's tokens.
  virtual bool overlaps_steps() const { return false; }
  virtual Status sample_async(SampleBatch* sample);
  virtual Status wait_sample(std::vector<int32_t>* ids);

  // Backend::set_step_priority for the step about to run (the step arbiter's
  // answer, memory/arbiter.h). Default: no-op.
  virtual void set_step_priority(bool /*high*/) {}
};

}  // namespace tandem

namespace tandem {

// A batch holding one fresh sequence prefilled from position 0, its pages
// numbered 0, 1, ...; logits for every token when all_logits, else the last.
ForwardBatch single_sequence_prefill(const std::vector<int32_t>& token_ids, int page_size, bool all_logits);

}  // namespace tandem
