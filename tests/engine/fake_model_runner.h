// A deterministic stand-in for a model, for engine tests and benchmarks.
//
// It keeps a real "KV cache": every token's (token id, position) is written to
// the slot the batch's slot_mapping names, and a query at position p reads the
// slots of positions [0, p] (or the last `window` of them) back through the
// batch's page table. Its logits are a pseudo-random function of the token ids
// it read. So a wrong page table, slot mapping, position, page copy or a page
// reused while still needed gives different tokens or an error, exactly as it
// would for a real model; a correct engine gives the same tokens for a
// sequence whatever else shares the batch.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/forward_batch.h"

namespace tandem::testing {

class FakeModelRunner : public ModelRunner {
 public:
  FakeModelRunner(int vocab_size, int num_pages, int page_size, int window = 0)
      : vocab_(vocab_size), num_pages_(num_pages), page_size_(page_size), window_(window),
        slots_(static_cast<size_t>(num_pages) * page_size, Slot{-1, -1}) {}

  Status forward(const ForwardBatch& b, std::vector<float>* logits) override {
    ++num_forward_calls_;
    batch_tokens_.push_back(b.num_tokens());
    batch_priority_.push_back(priority_);
    batch_seqs_.push_back(b.num_seqs());
    if (b.page_size != page_size_) return invalid_argument("page size mismatch");
    const int n = b.num_tokens();
    if (static_cast<int>(b.positions.size()) != n || static_cast<int>(b.slot_mapping.size()) != n ||
        static_cast<int>(b.query_start.size()) != b.num_seqs() + 1 ||
        static_cast<int>(b.page_indptr.size()) != b.num_seqs() + 1 ||
        static_cast<int>(b.last_page_len.size()) != b.num_seqs() || b.query_start.back() != n)
      return invalid_argument("malformed batch arrays");
    // Row -> sequence, and position checks against kv_len.
    std::vector<int> seq_of(n);
    for (int s = 0; s < b.num_seqs(); ++s) {
      int q0 = b.query_start[s], q1 = b.query_start[s + 1];
      int num_pages = b.page_indptr[s + 1] - b.page_indptr[s];
      if (num_pages != (b.kv_len[s] + page_size_ - 1) / page_size_ ||
          b.last_page_len[s] != b.kv_len[s] - (num_pages - 1) * page_size_)
        return invalid_argument("page count or last_page_len inconsistent with kv_len");
      for (int i = q0; i < q1; ++i) {
        seq_of[i] = s;
        if (b.positions[i] != b.kv_len[s] - (q1 - i)) return invalid_argument("position inconsistent with kv_len");
      }
    }
    // Write K/V of every token first (a chunk's queries see its own keys).
    for (int i = 0; i < n; ++i) {
      int32_t slot = b.slot_mapping[i];
      if (slot < 0 || slot >= static_cast<int32_t>(slots_.size())) return out_of_range("slot out of range");
      int s = seq_of[i];
      int32_t page = b.page_indices[b.page_indptr[s] + b.positions[i] / page_size_];
      if (page * page_size_ + b.positions[i] % page_size_ != slot)
        return invalid_argument("slot_mapping disagrees with the page table");
      slots_[slot] = Slot{b.token_ids[i], b.positions[i]};
    }
    logits->assign(b.logits_rows.size() * static_cast<size_t>(vocab_), 0.0f);
    std::vector<int32_t> seen;
    for (size_t r = 0; r < b.logits_rows.size(); ++r) {
      int i = b.logits_rows[r];
      int s = seq_of[i];
      int p = b.positions[i];
      int first = window_ > 0 ? std::max(0, p - window_ + 1) : 0;
      seen.clear();
      for (int q = first; q <= p; ++q) {
        int32_t page = b.page_indices[b.page_indptr[s] + q / page_size_];
        if (page < 0) return invalid_argument("read of a freed page (position " + std::to_string(q) + ")");
        const Slot& slot = slots_[static_cast<size_t>(page) * page_size_ + q % page_size_];
        if (slot.pos != q)
          return invalid_argument("slot for position " + std::to_string(q) + " holds position " +
                                  std::to_string(slot.pos));
        seen.push_back(slot.token);
      }
      uint64_t h = XXH3_64bits(seen.data(), seen.size() * sizeof(int32_t));
      float* row = logits->data() + r * vocab_;
      for (int v = 0; v < vocab_; ++v) row[v] = logit(h, v);
    }
    return Status();
  }

  Status copy_pages(const std::vector<std::pair<int32_t, int32_t>>& src_dst) override {
    for (auto [src, dst] : src_dst) {
      for (int j = 0; j < page_size_; ++j) {
        slots_[static_cast<size_t>(dst) * page_size_ + j] = slots_[static_cast<size_t>(src) * page_size_ + j];
      }
    }
    num_copied_pages_ += static_cast<int64_t>(src_dst.size());
    return Status();
  }

  // The model's logit for token v after a history hashing to h, in [-4, 4).
  static float logit(uint64_t h, int v) {
    uint64_t x = h ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(v + 1));
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 8.0f - 4.0f;
  }

  int vocab_size() const override { return vocab_; }
  int num_pages() const override { return num_pages_; }
  int page_size() const override { return page_size_; }
  int64_t num_forward_calls() const override { return num_forward_calls_; }
  int64_t num_copied_pages() const { return num_copied_pages_; }
  const std::vector<int>& batch_tokens() const { return batch_tokens_; }
  const std::vector<int>& batch_seqs() const { return batch_seqs_; }
  // Per forward: the last set_step_priority before it (1 high, 0 low), -1 if none yet.
  const std::vector<int>& batch_priority() const { return batch_priority_; }
  void set_step_priority(bool high) override { priority_ = high ? 1 : 0; }

  // Backend sampling through `b` (a CPU backend: Backend::sample's reference),
  // as a device runner would: forward_keep keeps the logits, sample() draws.
  void set_sampling_backend(Backend* b) { sample_backend_ = b; }
  bool samples_on_backend() const override { return sample_backend_ != nullptr; }
  Status forward_keep(const ForwardBatch& b) override {
    kept_rows_ = static_cast<int>(b.logits_rows.size());
    const int n = b.sampled_prefix;
    if (n < 0 || n > b.num_tokens() || n > static_cast<int>(drawn_.size()))
      return invalid_argument("sampled_prefix " + std::to_string(n) + " without that many draws");
    if (n > 0) {
      // As the device does: the last draws replace the placeholders. The host
      // must not have read them yet, or the step was not overlapped.
      if (!draws_unread_) return failed_precondition("sampled_prefix after the host read the draws");
      for (int i = 0; i < n; ++i) {
        if (b.token_ids[i] != 0) return invalid_argument("sampled_prefix token " + std::to_string(i) + " is not a placeholder");
      }
      ++num_overlapped_;
      ForwardBatch patched = b;
      std::copy(drawn_.begin(), drawn_.begin() + n, patched.token_ids.begin());
      drawn_.clear();
      return forward(patched, &kept_);
    }
    drawn_.clear();
    return forward(b, &kept_);
  }
  Status sample(SampleBatch* s, std::vector<int32_t>* ids) override {
    ++num_backend_samples_;
    std::vector<int32_t> out(s->rows.size(), -1);
    s->logits = TensorView(kept_.data(), DType::kF32, {kept_rows_, vocab_});
    s->out_ids = TensorView(out.data(), DType::kI32, {static_cast<int64_t>(out.size())});
    sample_backend_->sample(*s);
    *ids = out;
    return ok_status();
  }
  int64_t num_backend_samples() const { return num_backend_samples_; }

  // Overlapped steps (ModelRunner::overlaps_steps) on top of backend sampling.
  void set_overlap(bool on) { overlap_ = on; }
  bool overlaps_steps() const override { return sample_backend_ != nullptr && overlap_; }
  Status sample_async(SampleBatch* s) override {
    if (draws_unread_) return failed_precondition("sample_async before the last draws were read");
    RETURN_IF_ERROR(sample(s, &drawn_));
    downloaded_ = drawn_;
    draws_unread_ = true;
    return ok_status();
  }
  Status wait_sample(std::vector<int32_t>* ids) override {
    if (!draws_unread_) return failed_precondition("wait_sample without sample_async");
    draws_unread_ = false;
    *ids = downloaded_;
    return ok_status();
  }
  // Forwards that took their first tokens from draws the host had not read.
  int64_t num_overlapped() const { return num_overlapped_; }

 private:
  Backend* sample_backend_ = nullptr;
  std::vector<float> kept_;
  int kept_rows_ = 0;
  int64_t num_backend_samples_ = 0;
  bool overlap_ = false;
  std::vector<int32_t> drawn_;       // the last sample_async's ids "on the device" (until the next forward)
  std::vector<int32_t> downloaded_;  // ... and as wait_sample returns them
  bool draws_unread_ = false;
  int64_t num_overlapped_ = 0;

  struct Slot {
    int32_t token;
    int32_t pos;
  };
  int vocab_, num_pages_, page_size_, window_;
  std::vector<Slot> slots_;  // [num_pages * page_size]
  int64_t num_forward_calls_ = 0;
  int64_t num_copied_pages_ = 0;
  std::vector<int> batch_tokens_, batch_seqs_, batch_priority_;
  int priority_ = -1;
};

// Reference: the greedy continuation of `prompt` computed directly (no cache).
inline std::vector<int32_t> fake_greedy(std::vector<int32_t> tokens, int vocab, int num_new, int window = 0,
                                        const std::vector<int32_t>& eos = {}) {
  std::vector<int32_t> out;
  for (int k = 0; k < num_new; ++k) {
    int p = static_cast<int>(tokens.size()) - 1;
    int first = window > 0 ? std::max(0, p - window + 1) : 0;
    uint64_t h = XXH3_64bits(tokens.data() + first, (p - first + 1) * sizeof(int32_t));
    int best = 0;
    for (int v = 1; v < vocab; ++v) {
      if (FakeModelRunner::logit(h, v) > FakeModelRunner::logit(h, best)) best = v;
    }
    out.push_back(best);
    tokens.push_back(best);
    bool stop = false;
    for (int32_t e : eos) stop |= e == best;
    if (stop) break;
  }
  return out;
}

}  // namespace tandem::testing
