#include "sampling/backend_sample.h"

#include <algorithm>
#include <vector>

#include "common/check.h"

namespace tandem {

void add_sample_row(const SamplingParams& params, const SamplingContext& ctx, int logits_row,
                    SampleBatch* batch) {
  SampleRow r;
  r.logits_row = logits_row;
  r.temperature = params.temperature;
  r.top_k = params.top_k;
  r.top_p = params.top_p;
  r.min_p = params.min_p;
  r.repetition_penalty = params.repetition_penalty;
  r.presence_penalty = params.presence_penalty;
  r.frequency_penalty = params.frequency_penalty;
  r.seed = ctx.seed;
  r.choice_index = ctx.choice_index;
  r.output_index = ctx.output_index >= 0 ? ctx.output_index : static_cast<int>(ctx.output_tokens.size());
  r.penalty_begin = static_cast<int>(batch->penalties.size());
  // Distinct ids with their flags: (id, kind) pairs sorted, then merged.
  const bool rep = params.repetition_penalty != 1.0f;
  const bool freq = params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f;
  std::vector<std::pair<int32_t, int>> ids;  // kind 0: prompt, 1: output, 2: banned
  if (rep) {
    for (int32_t id : ctx.prompt_tokens) ids.push_back({id, 0});
  }
  if (rep || freq) {
    for (int32_t id : ctx.output_tokens) ids.push_back({id, 1});
  }
  for (int32_t id : ctx.banned_tokens) ids.push_back({id, 2});
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size();) {
    SamplePenaltyToken t;
    t.id = ids[i].first;
    size_t j = i;
    for (; j < ids.size() && ids[j].first == t.id; ++j) {
      const int kind = ids[j].second;
      if (kind == 2) t.banned = true;
      if (kind <= 1 && rep) t.seen = true;
      if (kind == 1 && freq) ++t.output_count;
    }
    batch->penalties.push_back(t);
    i = j;
  }
  r.penalty_end = static_cast<int>(batch->penalties.size());
  batch->rows.push_back(r);
}

// The reference: every row through sample_token() on a host copy of its logits,
// with the penalty state rebuilt from the distinct-id list (same semantics).
void Backend::sample(const SampleBatch& b) {
  CHECK(b.logits.dtype == DType::kF32 && b.logits.ndim == 2);
  CHECK(b.out_ids.dtype == DType::kI32 && b.out_ids.numel() == static_cast<int64_t>(b.rows.size()));
  const int64_t vocab = b.logits.dim(1);
  std::vector<float> row(vocab);
  std::vector<int32_t> ids(b.rows.size());
  std::vector<int32_t> prompt, output, banned;
  SamplerScratch scratch;
  for (size_t i = 0; i < b.rows.size(); ++i) {
    const SampleRow& r = b.rows[i];
    CHECK(r.logits_row >= 0 && r.logits_row < b.logits.dim(0));
    CHECK(r.penalty_begin >= 0 && r.penalty_begin <= r.penalty_end &&
          r.penalty_end <= static_cast<int>(b.penalties.size()));
    copy_device_to_host(row.data(), b.logits.as<float>() + r.logits_row * vocab, vocab * sizeof(float));
    prompt.clear();
    output.clear();
    banned.clear();
    for (int j = r.penalty_begin; j < r.penalty_end; ++j) {
      const SamplePenaltyToken& t = b.penalties[j];
      if (t.seen) prompt.push_back(t.id);
      for (int c = 0; c < t.output_count; ++c) output.push_back(t.id);
      if (t.banned) banned.push_back(t.id);
    }
    SamplingParams p;
    p.temperature = r.temperature;
    p.top_k = r.top_k;
    p.top_p = r.top_p;
    p.min_p = r.min_p;
    p.repetition_penalty = r.repetition_penalty;
    p.presence_penalty = r.presence_penalty;
    p.frequency_penalty = r.frequency_penalty;
    SamplingContext ctx;
    ctx.prompt_tokens = prompt;
    ctx.output_tokens = output;
    ctx.banned_tokens = banned;
    ctx.seed = r.seed;
    ctx.choice_index = r.choice_index;
    ctx.output_index = r.output_index;
    ids[i] = sample_token(p, ctx, row, &scratch).token_id;
  }
  copy_host_to_device(b.out_ids.data, ids.data(), ids.size() * sizeof(int32_t));
}

}  // namespace tandem
