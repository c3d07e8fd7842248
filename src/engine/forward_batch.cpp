#include "engine/forward_batch.h"

namespace tandem {

Status ModelRunner::forward_keep(const ForwardBatch&) {
  return Status(StatusCode::kUnimplemented, "this model runner does not sample on its backend");
}
Status ModelRunner::sample(SampleBatch*, std::vector<int32_t>*) {
  return Status(StatusCode::kUnimplemented, "this model runner does not sample on its backend");
}
Status ModelRunner::sample_async(SampleBatch*) {
  return Status(StatusCode::kUnimplemented, "this model runner does not overlap steps");
}
Status ModelRunner::wait_sample(std::vector<int32_t>*) {
  return Status(StatusCode::kUnimplemented, "this model runner does not overlap steps");
}

ForwardBatch single_sequence_prefill(const std::vector<int32_t>& token_ids, int page_size, bool all_logits) {
  ForwardBatch b;
  const int n = static_cast<int>(token_ids.size());
  const int pages = (n + page_size - 1) / page_size;
  b.page_size = page_size;
  b.token_ids = token_ids;
  for (int i = 0; i < n; ++i) {
    b.positions.push_back(i);
    b.slot_mapping.push_back(i);  // page i / page_size, row i % page_size
  }
  b.query_start = {0, n};
  b.kv_len = {n};
  b.page_indptr = {0, pages};
  for (int p = 0; p < pages; ++p) b.page_indices.push_back(p);
  b.last_page_len = {n - (pages - 1) * page_size};
  if (all_logits) {
    for (int i = 0; i < n; ++i) b.logits_rows.push_back(i);
  } else {
    b.logits_rows = {n - 1};
  }
  return b;
}

}  // namespace tandem
