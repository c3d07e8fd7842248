#include "model/model_runner.h"

#include <cstdlib>
#include <string>

#include <algorithm>
#include <string>

namespace tandem {

LocalModelRunner::~LocalModelRunner() {
  // Device memory goes back to the backend before the backend itself goes.
  kv_.clear();
  kv_k_.clear();
  kv_v_.clear();
  model_.reset();
}

StatusOr<std::unique_ptr<LocalModelRunner>> LocalModelRunner::create(std::shared_ptr<Backend> backend,
                                                                     const std::string& dir,
                                                                     const ModelRunnerOptions& options) {
  if (options.num_pages <= 0 || options.page_size <= 0)
    return invalid_argument("model runner: num_pages and page_size must be positive");
  std::unique_ptr<LocalModelRunner> r(new LocalModelRunner());
  r->backend_ = std::move(backend);
  r->options_ = options;
  // A switch for same-run comparisons (scripts/gpu/decode_ablation.sh nooverlap).
  if (const char* e = std::getenv("TANDEM_OVERLAP_STEPS"); e != nullptr && std::string(e) == "0")
    r->options_.overlap_steps = false;
  ASSIGN_OR_RETURN(r->model_, Model::load(dir, r->backend_.get(), options.load));
  if (options.reserve_tokens > 0)
    RETURN_IF_ERROR(r->model_->reserve_workspace(options.reserve_tokens, std::max(options.reserve_logits, 1)));
  if (options.shared_kv.base != nullptr) {
    RETURN_IF_ERROR(r->map_shared_kv());
    return r;
  }
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

Status LocalModelRunner::map_shared_kv() {
  const ChunkedKvMemory& m = options_.shared_kv;
  const ModelConfig& c = model_->config();
  const DType act = backend_->activation_dtype();
  const int64_t layer_page = int64_t{options_.page_size} * c.num_kv_heads * c.head_dim *
                             static_cast<int64_t>(dtype_size(act));
  const int64_t page = 2 * int64_t{c.num_layers} * layer_page;
  if (m.num_chunks <= 0 || m.chunk_bytes <= 0 || m.chunk_bytes % page != 0 || m.chunk_bytes % layer_page != 0)
    return invalid_argument("shared KV pool: chunk of " + std::to_string(m.chunk_bytes) +
                            " bytes is not a whole number of this model's KV pages of " + std::to_string(page) +
                            " bytes (" + dtype_name(act) + ")");
  pages_per_chunk_ = m.chunk_bytes / page;
  layer_pages_per_chunk_ = m.chunk_bytes / layer_page;
  const int64_t num_pages = m.num_chunks * pages_per_chunk_;
  const int64_t rows = m.num_chunks * layer_pages_per_chunk_;
  if (num_pages > (int64_t{1} << 31) / options_.page_size || rows > (int64_t{1} << 31) / options_.page_size)
    return invalid_argument("shared KV pool: " + std::to_string(rows) + " page rows overflow int32 slots");
  options_.num_pages = static_cast<int>(num_pages);
  char* base = static_cast<char*>(m.base);
  for (int l = 0; l < c.num_layers; ++l) {
    const int64_t k_row0 = 2 * l * pages_per_chunk_, v_row0 = k_row0 + pages_per_chunk_;
    KvCacheView view;
    view.k = TensorView(base + k_row0 * layer_page, act, {rows - k_row0, options_.page_size, c.num_kv_heads, c.head_dim});
    view.v = TensorView(base + v_row0 * layer_page, act, {rows - v_row0, options_.page_size, c.num_kv_heads, c.head_dim});
    kv_.push_back(view);
  }
  return ok_status();
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

namespace {

// A backend op that could not get scratch memory fails the step, not the process.
template <typename F>
Status guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const BackendOutOfMemory& e) {
    return Status(StatusCode::kResourceExhausted, std::string(what) + ": " + e.what());
  }
}

}  // namespace

const ForwardBatch& LocalModelRunner::in_view_rows(const ForwardBatch& batch) {
  if (pages_per_chunk_ == 0) return batch;
  translated_ = batch;
  const int ps = options_.page_size;
  for (int32_t& p : translated_.page_indices) p = kernel_page(p);
  for (int32_t& slot : translated_.slot_mapping)
    if (slot >= 0) slot = kernel_page(slot / ps) * ps + slot % ps;
  return translated_;
}

Status LocalModelRunner::forward(const ForwardBatch& batch, std::vector<float>* logits) {
  RETURN_IF_ERROR(validate(batch));
  ++num_forward_calls_;
  logits->clear();
  const ForwardBatch& b = in_view_rows(batch);
  return guarded("forward", [&] { return model_->forward(b, kv_, logits); });
}

Status LocalModelRunner::forward_keep(const ForwardBatch& batch) {
  RETURN_IF_ERROR(validate(batch));
  ++num_forward_calls_;
  const ForwardBatch& b = in_view_rows(batch);
  return guarded("forward", [&] { return model_->forward(b, kv_, nullptr); });
}

Status LocalModelRunner::sample(SampleBatch* sample, std::vector<int32_t>* ids) {
  return guarded("sample", [&] { return model_->sample(sample, ids); });
}

Status LocalModelRunner::sample_async(SampleBatch* sample) {
  return guarded("sample", [&] { return model_->sample_async(sample); });
}

Status LocalModelRunner::wait_sample(std::vector<int32_t>* ids) { return model_->wait_sample(ids); }

Status LocalModelRunner::copy_pages(const std::vector<std::pair<int32_t, int32_t>>& src_dst) {
  for (const auto& [src, dst] : src_dst)
    if (src < 0 || dst < 0 || src >= options_.num_pages || dst >= options_.num_pages)
      return invalid_argument("copy_pages: page pair (" + std::to_string(src) + ", " + std::to_string(dst) +
                              ") outside the cache");
  std::vector<std::pair<int32_t, int32_t>> rows = src_dst;
  for (auto& [src, dst] : rows) {
    src = kernel_page(src);
    dst = kernel_page(dst);
  }
  for (const auto& view : kv_) backend_->copy_kv_pages(view, rows);
  backend_->synchronize();
  return ok_status();
}

}  // namespace tandem
