#include "model/model.h"

#include <cmath>

#include "common/check.h"
#include "model/weights.h"

namespace tandem {

struct Model::Layer {
  DeviceTensor input_norm, post_norm;  // [H] F32
  std::unique_ptr<PreparedLinear> q, k, v, o, gate, up, down;
  int sliding_window = 0;
};

Model::~Model() = default;

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& dir, Backend* backend) {
  ASSIGN_OR_RETURN(ModelConfig cfg, ModelConfig::load(dir));
  ASSIGN_OR_RETURN(ModelWeightsHost host, load_weights_host(cfg, dir));
  std::unique_ptr<Model> m(new Model());
  m->config_ = cfg;
  m->backend_ = backend;
  Backend& be = *backend;
  ASSIGN_OR_RETURN(m->embed_, be.upload(host.embed, host.embed.dtype));
  ASSIGN_OR_RETURN(m->final_norm_, be.upload(host.final_norm, DType::kF32));
  auto prep = [&](const LinearWeight& w) -> StatusOr<std::unique_ptr<PreparedLinear>> {
    auto r = be.prepare_linear(w);
    if (!r.ok()) return Status(r.status().code(), dir + ": " + r.status().message());
    return r;
  };
  for (int i = 0; i < cfg.num_layers; ++i) {
    const LayerWeightsHost& h = host.layers[i];
    auto l = std::make_unique<Layer>();
    ASSIGN_OR_RETURN(l->input_norm, be.upload(h.input_norm, DType::kF32));
    ASSIGN_OR_RETURN(l->post_norm, be.upload(h.post_norm, DType::kF32));
    ASSIGN_OR_RETURN(l->q, prep(h.q));
    ASSIGN_OR_RETURN(l->k, prep(h.k));
    ASSIGN_OR_RETURN(l->v, prep(h.v));
    ASSIGN_OR_RETURN(l->o, prep(h.o));
    ASSIGN_OR_RETURN(l->gate, prep(h.gate));
    ASSIGN_OR_RETURN(l->up, prep(h.up));
    ASSIGN_OR_RETURN(l->down, prep(h.down));
    l->sliding_window = cfg.layer_sliding_window[i];
    m->layers_.push_back(std::move(l));
  }
  ASSIGN_OR_RETURN(m->lm_head_, prep(host.lm_head));
  // HF: inv_freq = 1 / base^(2i/d) in fp32; linear scaling divides it by the factor.
  const int half = cfg.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(cfg.head_dim);
    inv[i] = 1.0f / std::pow(cfg.rope_theta, e);
    if (cfg.rope_scaling == RopeScalingType::kLinear) inv[i] /= cfg.rope_scaling_factor;
  }
  ASSIGN_OR_RETURN(m->inv_freq_, be.upload(TensorView(inv.data(), DType::kF32, {half}), DType::kF32));
  be.synchronize();
  return m;
}

size_t Model::weight_bytes() const {
  size_t n = embed_.view.nbytes() + final_norm_.view.nbytes() + lm_head_->nbytes();
  for (const auto& l : layers_)
    n += l->input_norm.view.nbytes() + l->post_norm.view.nbytes() + l->q->nbytes() + l->k->nbytes() +
         l->v->nbytes() + l->o->nbytes() + l->gate->nbytes() + l->up->nbytes() + l->down->nbytes();
  return n;
}

Status Model::ensure_workspace(int num_tokens, int num_logits) {
  Backend& be = *backend_;
  const DType act = be.activation_dtype();
  const ModelConfig& c = config_;
  if (num_tokens > capacity_tokens_) {
    const int t = std::max(num_tokens, capacity_tokens_ * 2);
    ASSIGN_OR_RETURN(residual_, be.allocate_tensor(act, {t, c.hidden_size}));
    ASSIGN_OR_RETURN(hidden_, be.allocate_tensor(act, {t, c.hidden_size}));
    ASSIGN_OR_RETURN(q_, be.allocate_tensor(act, {t, c.num_heads, c.head_dim}));
    ASSIGN_OR_RETURN(k_, be.allocate_tensor(act, {t, c.num_kv_heads, c.head_dim}));
    ASSIGN_OR_RETURN(v_, be.allocate_tensor(act, {t, c.num_kv_heads, c.head_dim}));
    ASSIGN_OR_RETURN(attn_, be.allocate_tensor(act, {t, c.num_heads, c.head_dim}));
    ASSIGN_OR_RETURN(gate_, be.allocate_tensor(act, {t, c.intermediate_size}));
    ASSIGN_OR_RETURN(up_, be.allocate_tensor(act, {t, c.intermediate_size}));
    capacity_tokens_ = t;
  }
  if (num_logits > capacity_logits_) {
    const int r = std::max(num_logits, capacity_logits_ * 2);
    ASSIGN_OR_RETURN(gathered_, be.allocate_tensor(act, {r, c.hidden_size}));
    ASSIGN_OR_RETURN(logits_act_, be.allocate_tensor(act, {r, c.vocab_size}));
    ASSIGN_OR_RETURN(logits_f32_, be.allocate_tensor(DType::kF32, {r, c.vocab_size}));
    capacity_logits_ = r;
  }
  return ok_status();
}

Status Model::forward(const ForwardBatch& batch, const std::vector<KvCacheView>& kv, std::vector<float>* logits) {
  Backend& be = *backend_;
  const ModelConfig& c = config_;
  const int t = batch.num_tokens(), r = static_cast<int>(batch.logits_rows.size());
  const int s = batch.num_seqs();
  CHECK_EQ(static_cast<int>(kv.size()), c.num_layers);
  RETURN_IF_ERROR(ensure_workspace(std::max(t, 1), std::max(r, 1)));

  // Upload the int32 metadata in one buffer.
  const std::vector<const std::vector<int32_t>*> parts = {
      &batch.token_ids, &batch.positions, &batch.slot_mapping, &batch.query_start,
      &batch.kv_len,    &batch.page_indptr, &batch.page_indices, &batch.logits_rows};
  size_t total = 0;
  for (const auto* p : parts) total += p->size();
  if (total * 4 > meta_capacity_) {
    ASSIGN_OR_RETURN(meta_, be.allocate(std::max(total * 4, meta_capacity_ * 2)));
    meta_capacity_ = meta_.bytes();
  }
  std::vector<int32_t> host;
  host.reserve(total);
  std::vector<int32_t*> dev;
  for (const auto* p : parts) {
    dev.push_back(static_cast<int32_t*>(meta_.data()) + host.size());
    host.insert(host.end(), p->begin(), p->end());
  }
  if (!host.empty()) be.copy_host_to_device(meta_.data(), host.data(), host.size() * 4);
  const TensorView ids(dev[0], DType::kI32, {t});
  const TensorView positions(dev[1], DType::kI32, {t});
  const TensorView slots(dev[2], DType::kI32, {t});
  const TensorView rows(dev[7], DType::kI32, {r});
  PageTableView pages;
  pages.num_seqs = s;
  pages.num_tokens = t;
  pages.page_size = batch.page_size;
  pages.query_start = dev[3];
  pages.kv_len = dev[4];
  pages.page_indptr = dev[5];
  pages.page_indices = dev[6];
  for (int i = 0; i < s; ++i) {
    pages.max_query_len = std::max(pages.max_query_len, batch.query_start[i + 1] - batch.query_start[i]);
    pages.max_kv_len = std::max(pages.max_kv_len, batch.kv_len[i]);
  }

  const TensorView residual = residual_.view.rows(0, t);
  const TensorView hidden = hidden_.view.rows(0, t);
  const TensorView q = q_.view.rows(0, t), k = k_.view.rows(0, t), v = v_.view.rows(0, t);
  const TensorView attn = attn_.view.rows(0, t);
  const TensorView gate = gate_.view.rows(0, t), up = up_.view.rows(0, t);
  const TensorView q2 = q.reshape({t, c.q_size()}), k2 = k.reshape({t, c.kv_size()}), v2 = v.reshape({t, c.kv_size()});
  const TensorView attn2 = attn.reshape({t, c.q_size()});
  const float eps = c.rms_norm_eps;

  if (t > 0) {
    be.embedding(embed_.view, ids, residual);  // residual stream [T, H]
    be.rms_norm(residual, layers_[0]->input_norm.view, eps, hidden);
    for (int li = 0; li < c.num_layers; ++li) {
      Layer& l = *layers_[li];
      be.linear(hidden, *l.q, q2);
      be.linear(hidden, *l.k, k2);
      be.linear(hidden, *l.v, v2);
      RopeParams rp;
      rp.q = q;
      rp.k = k;
      rp.positions = positions;
      rp.inv_freq = inv_freq_.view;
      rp.rotary_dim = c.head_dim;
      be.rope(rp);
      be.write_kv(k, v, slots, kv[li]);
      AttentionParams ap;
      ap.q = q;
      ap.out = attn;
      ap.cache = kv[li];
      ap.pages = pages;
      ap.num_heads = c.num_heads;
      ap.num_kv_heads = c.num_kv_heads;
      ap.head_dim = c.head_dim;
      ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      ap.sliding_window = l.sliding_window;
      be.attention(ap);
      be.linear(attn2, *l.o, hidden);
      be.add_rms_norm(hidden, residual, l.post_norm.view, eps, hidden);
      be.linear(hidden, *l.gate, gate);
      be.linear(hidden, *l.up, up);
      be.silu_mul(gate, up, gate);
      be.linear(gate, *l.down, hidden);
      const TensorView& next_norm = li + 1 < c.num_layers ? layers_[li + 1]->input_norm.view : final_norm_.view;
      be.add_rms_norm(hidden, residual, next_norm, eps, hidden);
    }
  }
  if (r == 0) return ok_status();
  const TensorView gathered = gathered_.view.rows(0, r);
  const TensorView logits_act = logits_act_.view.rows(0, r);
  be.gather_rows(hidden, rows, gathered);
  be.linear(gathered, *lm_head_, logits_act);
  TensorView out = logits_act;
  if (logits_act.dtype != DType::kF32) {
    out = logits_f32_.view.rows(0, r);
    be.convert(logits_act, out);
  }
  if (logits == nullptr) {  // sampled on the backend next (sample())
    kept_logits_ = out;
    return ok_status();
  }
  const size_t base = logits->size();
  logits->resize(base + static_cast<size_t>(r) * c.vocab_size);
  be.copy_device_to_host(logits->data() + base, out.data, out.nbytes());
  be.synchronize();
  return ok_status();
}

Status Model::sample(SampleBatch* sample, std::vector<int32_t>* ids) {
  Backend& be = *backend_;
  const int n = static_cast<int>(sample->rows.size());
  ids->assign(n, 0);
  if (n == 0) return ok_status();
  for (const SampleRow& row : sample->rows) {
    if (kept_logits_.empty() || row.logits_row < 0 || row.logits_row >= kept_logits_.dim(0))
      return invalid_argument("sample: logits_row " + std::to_string(row.logits_row) + " is not a row of the last forward");
  }
  if (sample_ids_.view.empty() || sample_ids_.view.numel() < n) {
    ASSIGN_OR_RETURN(sample_ids_, be.allocate_tensor(DType::kI32, {std::max<int64_t>(n, 2 * sample_ids_.view.numel())}));
  }
  sample->logits = kept_logits_;
  sample->out_ids = sample_ids_.view.rows(0, n);
  be.sample(*sample);
  be.copy_device_to_host(ids->data(), sample->out_ids.data, static_cast<size_t>(n) * sizeof(int32_t));
  return ok_status();
}

}  // namespace tandem
