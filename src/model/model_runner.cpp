#include "model/model_runner.h"

#include <string>

namespace tandem {

LocalModelRunner::~LocalModelRunner() {
  // Device memory goes back to the backend before the backend itself goes.
  kv_.clear();
  kv_k_.clear();
  kv_v_.clear();
  model_.reset();
}

StatusOr<std::unique_ptr<LocalModelRunner>> LocalModelRunner::create(std::unique_ptr<Backend> backend,
                                                                     const std::string& dir,
                                                                     const ModelRunnerOptions& options) {
  if (options.num_pages <= 0 || options.page_size <= 0)
    return invalid_argument("model runner: num_pages and page_size must be positive");
  std::unique_ptr<LocalModelRunner> r(new LocalModelRunner());
  r->backend_ = std::move(backend);
  r->options_ = options;
  ASSIGN_OR_RETURN(r->model_, Model::load(dir, r->backend_.get()));
  const ModelConfig& c = r->model_->config();
  const DType act = r->backend_->activation_dtype();
  for (int i = 0; i < c.num_layers; ++i) {
    ASSIGN_OR_RETURN(DeviceTensor k, r->backend_->allocate_tensor(
                                         act, {options.num_pages, options.page_size, c.num_kv_heads, c.head_dim}));
    ASSIGN_OR_RETURN(DeviceTensor v, r->backend_->allocate_tensor(
                                         act, {options.num_pages, options.page_size, c.num_kv_heads, c.head_dim}));
    // Zeroed so a stray read of an unwritten row is finite.
    r->backend_->fill_zero(k.buffer.data(), k.buffer.bytes());
    r->backend_->fill_zero(v.buffer.data(), v.buffer.bytes());
    r->kv_.push_back(KvCacheView{k.view, v.view});
    r->kv_k_.push_back(std::move(k));
    r->kv_v_.push_back(std::move(v));
  }
  return r;
}

Status LocalModelRunner::validate(const ForwardBatch& b) const {
  auto bad = [](const std::string& m) { return invalid_argument("forward batch: " + m); };
  const int t = b.num_tokens(), s = b.num_seqs(), ps = options_.page_size;
  if (b.page_size != ps)
    return bad("page_size " + std::to_string(b.page_size) + " differs from the runner's " + std::to_string(ps));
  if (static_cast<int>(b.positions.size()) != t || static_cast<int>(b.slot_mapping.size()) != t)
    return bad("positions and slot_mapping must have one entry per token");
  if (static_cast<int>(b.query_start.size()) != s + 1 || static_cast<int>(b.page_indptr.size()) != s + 1 ||
      static_cast<int>(b.last_page_len.size()) != s)
    return bad("query_start/page_indptr need num_seqs + 1 entries and last_page_len num_seqs");
  if (s > 0 && (b.query_start[0] != 0 || b.query_start[s] != t))
    return bad("query_start must run from 0 to num_tokens");
  if (s > 0 && (b.page_indptr[0] != 0 || b.page_indptr[s] != static_cast<int>(b.page_indices.size())))
    return bad("page_indptr must run from 0 to page_indices.size()");
  const int vocab = model_->config().vocab_size;
  for (int i = 0; i < t; ++i) {
    if (b.token_ids[i] < 0 || b.token_ids[i] >= vocab)
      return bad("token_ids[" + std::to_string(i) + "] = " + std::to_string(b.token_ids[i]) +
                 " is outside the vocabulary (" + std::to_string(vocab) + ")");
    if (b.slot_mapping[i] >= options_.num_pages * ps)
      return bad("slot_mapping[" + std::to_string(i) + "] = " + std::to_string(b.slot_mapping[i]) +
                 " is outside the cache (" + std::to_string(options_.num_pages * ps) + " slots)");
    if (b.positions[i] < 0) return bad("positions[" + std::to_string(i) + "] is negative");
  }
  for (int i = 0; i < s; ++i) {
    const int nq = b.query_start[i + 1] - b.query_start[i];
    const int np = b.page_indptr[i + 1] - b.page_indptr[i];
    if (nq < 0 || np < 0) return bad("query_start and page_indptr must not decrease");
    if (b.kv_len[i] < nq) return bad("kv_len[" + std::to_string(i) + "] is smaller than its query tokens");
    if (np * ps < b.kv_len[i])
      return bad("sequence " + std::to_string(i) + " has " + std::to_string(np) + " pages for " +
                 std::to_string(b.kv_len[i]) + " tokens");
  }
  for (size_t i = 0; i < b.page_indices.size(); ++i)
    if (b.page_indices[i] < -1 || b.page_indices[i] >= options_.num_pages)
      return bad("page_indices[" + std::to_string(i) + "] = " + std::to_string(b.page_indices[i]) +
                 " is outside the cache (" + std::to_string(options_.num_pages) + " pages)");
  for (size_t i = 0; i < b.logits_rows.size(); ++i)
    if (b.logits_rows[i] < 0 || b.logits_rows[i] >= t)
      return bad("logits_rows[" + std::to_string(i) + "] is not a token of the batch");
  return ok_status();
}

Status LocalModelRunner::forward(const ForwardBatch& batch, std::vector<float>* logits) {
  RETURN_IF_ERROR(validate(batch));
  ++num_forward_calls_;
  logits->clear();
  return model_->forward(batch, kv_, logits);
}

Status LocalModelRunner::forward_keep(const ForwardBatch& batch) {
  RETURN_IF_ERROR(validate(batch));
  ++num_forward_calls_;
  return model_->forward(batch, kv_, nullptr);
}

Status LocalModelRunner::sample(SampleBatch* sample, std::vector<int32_t>* ids) {
  return model_->sample(sample, ids);
}

Status LocalModelRunner::copy_pages(const std::vector<std::pair<int32_t, int32_t>>& src_dst) {
  for (const auto& [src, dst] : src_dst)
    if (src < 0 || dst < 0 || src >= options_.num_pages || dst >= options_.num_pages)
      return invalid_argument("copy_pages: page pair (" + std::to_string(src) + ", " + std::to_string(dst) +
                              ") outside the cache");
  for (const auto& view : kv_) backend_->copy_kv_pages(view, src_dst);
  backend_->synchronize();
  return ok_status();
}

}  // namespace tandem
