#include "model/model.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "common/log.h"
#include "memory/weights.h"
#include "model/linear_concat.h"
#include "model/weights.h"

namespace tandem {

struct Model::Layer {
  DeviceTensor input_norm, post_norm;  // [H] F32
  // Either qkv ([q_size + 2 kv_size, H], fused at load) or q, k, v; either
  // gate_up ([2 I, H]) or gate, up.
  std::unique_ptr<PreparedLinear> qkv, q, k, v, o, gate_up, gate, up, down;
  int sliding_window = 0;
};

// One batch's metadata as backend views (int32, in backend memory).
struct Model::StepMeta {
  int t = 0, r = 0;
  TensorView ids, positions, slots, rows;
  PageTableView pages;
};

Model::~Model() = default;

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& dir, Backend* backend,
                                             const ModelLoadOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig cfg, options.dummy ? memory::load_model_config(dir) : ModelConfig::load(dir));
  if (Status st = backend->check_head_dim(cfg.head_dim); !st.ok()) return Status(st.code(), dir + ": " + st.message());
  ASSIGN_OR_RETURN(ModelWeightsHost host, options.dummy ? dummy_weights_host(cfg) : load_weights_host(cfg, dir));
  std::unique_ptr<Model> m(new Model());
  m->config_ = cfg;
  m->backend_ = backend;
  Backend& be = *backend;
  // Dummy: every tensor gets its own seed, in load order.
  uint64_t next_seed = options.seed * 1000003u;
  auto upload = [&](const TensorView& h, DType dtype, float lo, float hi) -> StatusOr<DeviceTensor> {
    if (!options.dummy) return be.upload(h, dtype);
    TensorView v = h;
    v.dtype = dtype;
    ASSIGN_OR_RETURN(DeviceBuffer buf, be.allocate(v.nbytes()));
    v.data = buf.data();
    be.fill_random_uniform(v, lo, hi, ++next_seed);
    return DeviceTensor{std::move(buf), v};
  };
  ASSIGN_OR_RETURN(m->embed_, upload(host.embed, host.embed.dtype, -1.0f, 1.0f));
  ASSIGN_OR_RETURN(m->final_norm_, upload(host.final_norm, DType::kF32, 0.8f, 1.2f));
  auto prep = [&](const LinearWeight& w) -> StatusOr<std::unique_ptr<PreparedLinear>> {
    auto r = options.dummy ? be.prepare_random_linear(w, ++next_seed) : be.prepare_linear(w);
    if (!r.ok()) return Status(r.status().code(), dir + ": " + r.status().message());
    return r;
  };
  // Linears that read the same input become one wider layer where the backend
  // prefers it (one GEMV pass instead of three or two); else they stay separate.
  const bool fuse = be.prefers_fused_linears();
  auto prep_fused = [&](std::vector<const LinearWeight*> parts,
                        const std::string& name) -> StatusOr<std::unique_ptr<PreparedLinear>> {
    std::string why;
    if (!fuse || !can_concat_linears(parts, &why)) {
      if (fuse) {
        TANDEM_LOG(kInfo) << dir << ": not fusing " << name << ": " << why;
      }
      return std::unique_ptr<PreparedLinear>();
    }
    std::unique_ptr<ConcatLinearHost> cat = concat_linears(parts, name);
    return prep(cat->weight);
  };
  for (int i = 0; i < cfg.num_layers; ++i) {
    const LayerWeightsHost& h = host.layers[i];
    auto l = std::make_unique<Layer>();
    ASSIGN_OR_RETURN(l->input_norm, upload(h.input_norm, DType::kF32, 0.8f, 1.2f));
    ASSIGN_OR_RETURN(l->post_norm, upload(h.post_norm, DType::kF32, 0.8f, 1.2f));
    ASSIGN_OR_RETURN(l->qkv, prep_fused({&h.q, &h.k, &h.v}, h.q.name + "+k_proj+v_proj"));
    if (!l->qkv) {
      ASSIGN_OR_RETURN(l->q, prep(h.q));
      ASSIGN_OR_RETURN(l->k, prep(h.k));
      ASSIGN_OR_RETURN(l->v, prep(h.v));
    }
    ASSIGN_OR_RETURN(l->o, prep(h.o));
    ASSIGN_OR_RETURN(l->gate_up, prep_fused({&h.gate, &h.up}, h.gate.name + "+up_proj"));
    if (!l->gate_up) {
      ASSIGN_OR_RETURN(l->gate, prep(h.gate));
      ASSIGN_OR_RETURN(l->up, prep(h.up));
    }
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
  m->graphs_enabled_ = be.supports_graphs();
  be.synchronize();
  return m;
}

size_t Model::weight_bytes() const {
  size_t n = embed_.view.nbytes() + final_norm_.view.nbytes() + lm_head_->nbytes();
  for (const auto& l : layers_) {
    n += l->input_norm.view.nbytes() + l->post_norm.view.nbytes();
    for (const auto* p : {&l->qkv, &l->q, &l->k, &l->v, &l->o, &l->gate_up, &l->gate, &l->up, &l->down})
      if (*p) n += (*p)->nbytes();
  }
  return n;
}

Status Model::ensure_workspace(int num_tokens, int num_logits) {
  Backend& be = *backend_;
  const DType act = be.activation_dtype();
  const ModelConfig& c = config_;
  const bool fused_qkv = layers_.empty() ? false : static_cast<bool>(layers_[0]->qkv);
  const bool fused_mlp = layers_.empty() ? false : static_cast<bool>(layers_[0]->gate_up);
  if (num_tokens > capacity_tokens_) {
    graphs_.clear();  // they point at the buffers replaced below
    const int t = std::max(num_tokens, capacity_tokens_ * 2);
    ASSIGN_OR_RETURN(residual_, be.allocate_tensor(act, {t, c.hidden_size}));
    ASSIGN_OR_RETURN(hidden_, be.allocate_tensor(act, {t, c.hidden_size}));
    ASSIGN_OR_RETURN(q_, be.allocate_tensor(act, {t, c.num_heads, c.head_dim}));
    ASSIGN_OR_RETURN(k_, be.allocate_tensor(act, {t, c.num_kv_heads, c.head_dim}));
    ASSIGN_OR_RETURN(v_, be.allocate_tensor(act, {t, c.num_kv_heads, c.head_dim}));
    ASSIGN_OR_RETURN(attn_, be.allocate_tensor(act, {t, c.num_heads, c.head_dim}));
    ASSIGN_OR_RETURN(gate_, be.allocate_tensor(act, {t, c.intermediate_size}));
    if (fused_qkv) {
      ASSIGN_OR_RETURN(qkv_, be.allocate_tensor(act, {t, c.q_size() + 2 * c.kv_size()}));
    }
    if (fused_mlp) {
      ASSIGN_OR_RETURN(gate_up_, be.allocate_tensor(act, {t, 2 * c.intermediate_size}));
    } else {
      ASSIGN_OR_RETURN(up_, be.allocate_tensor(act, {t, c.intermediate_size}));
    }
    capacity_tokens_ = t;
  }
  if (num_logits > capacity_logits_) {
    graphs_.clear();
    const int r = std::max(num_logits, capacity_logits_ * 2);
    ASSIGN_OR_RETURN(gathered_, be.allocate_tensor(act, {r, c.hidden_size}));
    ASSIGN_OR_RETURN(logits_act_, be.allocate_tensor(act, {r, c.vocab_size}));
    ASSIGN_OR_RETURN(logits_f32_, be.allocate_tensor(DType::kF32, {r, c.vocab_size}));
    capacity_logits_ = r;
  }
  return ok_status();
}

namespace {

void fill_page_hints(const ForwardBatch& batch, PageTableView* pages) {
  for (int i = 0; i < batch.num_seqs(); ++i) {
    pages->max_query_len = std::max(pages->max_query_len, batch.query_start[i + 1] - batch.query_start[i]);
    pages->max_kv_len = std::max(pages->max_kv_len, batch.kv_len[i]);
  }
}

}  // namespace

Status Model::upload_meta(const ForwardBatch& batch, StepMeta* m) {
  Backend& be = *backend_;
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
  const int t = m->t, r = m->r;
  m->ids = TensorView(dev[0], DType::kI32, {t});
  m->positions = TensorView(dev[1], DType::kI32, {t});
  m->slots = TensorView(dev[2], DType::kI32, {t});
  m->rows = TensorView(dev[7], DType::kI32, {r});
  m->pages.query_start = dev[3];
  m->pages.kv_len = dev[4];
  m->pages.page_indptr = dev[5];
  m->pages.page_indices = dev[6];
  fill_page_hints(batch, &m->pages);
  return ok_status();
}

bool Model::graph_eligible(const ForwardBatch& batch) const {
  const int s = batch.num_seqs();
  if (!graphs_enabled_ || s == 0 || s > kMaxGraphBatch || batch.num_tokens() != s ||
      static_cast<int>(batch.logits_rows.size()) != s)
    return false;
  for (int i = 0; i < s; ++i)
    if (batch.logits_rows[i] != i || batch.query_start[i] != i) return false;
  return true;
}

// Graph steps keep their metadata at fixed offsets (sized for kMaxGraphBatch
// sequences) so a captured graph reads this step's values from the same
// addresses: [ids | positions | slots | query_start | kv_len | page_indptr | rows | page_indices].
Status Model::upload_graph_meta(const ForwardBatch& batch, StepMeta* m) {
  Backend& be = *backend_;
  constexpr int64_t B = kMaxGraphBatch;
  constexpr int64_t kPagesAt = 7 * B + 8;
  const int64_t pages = static_cast<int64_t>(batch.page_indices.size());
  if (pages > graph_meta_pages_ || graph_meta_.data() == nullptr) {
    graphs_.clear();
    const int64_t cap = std::max<int64_t>({pages, 2 * graph_meta_pages_, 4096});
    graph_meta_.reset();
    ASSIGN_OR_RETURN(graph_meta_, be.allocate(static_cast<size_t>(kPagesAt + cap) * 4));
    graph_meta_pages_ = cap;
  }
  std::vector<int32_t> host(kPagesAt + pages, 0);
  auto put = [&](int64_t at, const std::vector<int32_t>& v) { std::copy(v.begin(), v.end(), host.begin() + at); };
  put(0, batch.token_ids);
  put(B, batch.positions);
  put(2 * B, batch.slot_mapping);
  put(3 * B, batch.query_start);
  put(4 * B + 1, batch.kv_len);
  put(5 * B + 1, batch.page_indptr);
  put(6 * B + 2, batch.logits_rows);
  put(kPagesAt, batch.page_indices);
  be.copy_host_to_device(graph_meta_.data(), host.data(), host.size() * 4);
  int32_t* d = static_cast<int32_t*>(graph_meta_.data());
  const int t = m->t;
  m->ids = TensorView(d, DType::kI32, {t});
  m->positions = TensorView(d + B, DType::kI32, {t});
  m->slots = TensorView(d + 2 * B, DType::kI32, {t});
  m->rows = TensorView(d + 6 * B + 2, DType::kI32, {t});
  m->pages.query_start = d + 3 * B;
  m->pages.kv_len = d + 4 * B + 1;
  m->pages.page_indptr = d + 5 * B + 1;
  m->pages.page_indices = d + kPagesAt;
  // Launch shapes may not follow the step: every query is one token, the
  // longest context is left unknown (backend.h).
  m->pages.max_query_len = 1;
  m->pages.max_kv_len = 0;
  return ok_status();
}

Status Model::forward(const ForwardBatch& batch, const std::vector<KvCacheView>& kv, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  const int t = batch.num_tokens(), r = static_cast<int>(batch.logits_rows.size());
  CHECK_EQ(static_cast<int>(kv.size()), c.num_layers);
  RETURN_IF_ERROR(ensure_workspace(std::max(t, 1), std::max(r, 1)));
  StepMeta m;
  m.t = t;
  m.r = r;
  m.pages.num_seqs = batch.num_seqs();
  m.pages.num_tokens = t;
  m.pages.page_size = batch.page_size;
  if (batch.sampled_prefix < 0 || batch.sampled_prefix > std::min(t, num_drawn_))
    return invalid_argument("forward: sampled_prefix " + std::to_string(batch.sampled_prefix) + " outside [0, " +
                            std::to_string(std::min(t, num_drawn_)) + "] (tokens, draws of the last sample)");
  TensorView out;
  const bool graph = graph_eligible(batch);
  RETURN_IF_ERROR(graph ? upload_graph_meta(batch, &m) : upload_meta(batch, &m));
  if (batch.sampled_prefix > 0) {  // after the upload, in stream order: the draws replace the placeholders
    backend_->copy_device_to_device(m.ids.data, sample_ids_.view.data,
                                    static_cast<size_t>(batch.sampled_prefix) * sizeof(int32_t));
  }
  if (!graph || !run_graph(m, kv)) out = issue(m, kv);
  num_drawn_ = 0;  // the next forward may take only draws made after this one
  if (r == 0) return ok_status();
  if (out.empty()) out = logits_f32_.view.rows(0, r);
  if (logits == nullptr) {  // sampled on the backend next (sample())
    kept_logits_ = out;
    return ok_status();
  }
  const size_t base = logits->size();
  logits->resize(base + static_cast<size_t>(r) * c.vocab_size);
  backend_->copy_device_to_host(logits->data() + base, out.data, out.nbytes());
  backend_->synchronize();
  return ok_status();
}

bool Model::run_graph(const StepMeta& m, const std::vector<KvCacheView>& kv) {
  Backend& be = *backend_;
  std::vector<const void*> kv_addr;
  for (const KvCacheView& v : kv) {
    kv_addr.push_back(v.k.data);
    kv_addr.push_back(v.v.data);
  }
  if (kv_addr != graph_kv_) {
    graphs_.clear();
    graph_kv_ = kv_addr;
  }
  const int s = m.t;
  auto it = graphs_.find(s);
  if (it != graphs_.end()) {
    if (be.replay(*it->second)) return true;
    graphs_.erase(it);  // the backend's scratch moved: capture again
  }
  if (graph_warm_.insert(s).second) return false;  // first time: run directly (sizes the scratch)
  if (Status st = be.begin_capture(); !st.ok()) {
    TANDEM_LOG(kWarning) << "decode graphs off: " << st.message();
    graphs_enabled_ = false;
    return false;
  }
  const TensorView out = issue(m, kv);
  auto g = be.end_capture();
  if (!g.ok()) {
    // Nothing ran while capturing: the caller issues the ops directly.
    TANDEM_LOG(kWarning) << "decode graph capture at batch " << s << " failed: " << g.status().message();
    graph_warm_.erase(s);
    return false;
  }
  // The logits land in logits_f32_ (F32 activations are the CPU's, which has no graphs).
  CHECK(out.data == logits_f32_.view.data);
  auto& slot = graphs_[s];
  slot = std::move(g).value();
  if (!be.replay(*slot)) {
    graphs_.erase(s);
    return false;
  }
  return true;
}

Model::DecodeFusion Model::decode_fusion(const TensorView& residual, const TensorView& attn,
                                         const TensorView& gate) const {
  const Backend& be = *backend_;
  DecodeFusion f{true, true};
  for (const auto& lp : layers_) {
    const Layer& l = *lp;
    if (!l.qkv || !l.gate_up) return {};
    if (!be.linear_fuses(residual, *l.qkv, LinearFusion{l.input_norm.view, 0.f, {}}) ||
        !be.linear_fuses(attn, *l.o, LinearFusion{{}, 0.f, residual}) ||
        !be.linear_fuses(residual, *l.gate_up, LinearFusion{l.post_norm.view, 0.f, {}}) ||
        !be.linear_fuses(gate, *l.down, LinearFusion{{}, 0.f, residual}))
      return {};
    f.swiglu = f.swiglu && be.linear_fuses(residual, *l.gate_up, LinearFusion{l.post_norm.view, 0.f, {}, true});
  }
  return f;
}

TensorView Model::issue(const StepMeta& m, const std::vector<KvCacheView>& kv) {
  Backend& be = *backend_;
  const ModelConfig& c = config_;
  const int t = m.t, r = m.r;
  const TensorView residual = residual_.view.rows(0, t);
  const TensorView hidden = hidden_.view.rows(0, t);
  const TensorView q = q_.view.rows(0, t), k = k_.view.rows(0, t), v = v_.view.rows(0, t);
  const TensorView attn = attn_.view.rows(0, t);
  const TensorView gate = gate_.view.rows(0, t);
  const TensorView q2 = q.reshape({t, c.q_size()}), k2 = k.reshape({t, c.kv_size()}), v2 = v.reshape({t, c.kv_size()});
  const TensorView attn2 = attn.reshape({t, c.q_size()});
  const float eps = c.rms_norm_eps;

  if (t > 0) {
    be.embedding(embed_.view, m.ids, residual);  // residual stream [T, H]
    // Where the backend fuses (CUDA, decode-sized steps of int4 models), the
    // RMSNorms ride on the linears that read them and the residual adds on the
    // linears that write them: four kernels fewer per layer.
    const DecodeFusion fusion = decode_fusion(residual, attn2, gate);
    const bool fuse = fusion.norms;
    if (!fuse) be.rms_norm(residual, layers_[0]->input_norm.view, eps, hidden);
    for (int li = 0; li < c.num_layers; ++li) {
      Layer& l = *layers_[li];
      TensorView lq = q, lk = k, lv = v;
      if (l.qkv) {
        const TensorView qkv = qkv_.view.rows(0, t);
        if (fuse) {
          be.linear_fused(residual, *l.qkv, qkv, LinearFusion{l.input_norm.view, eps, {}});
        } else {
          be.linear(hidden, *l.qkv, qkv);
        }
        if (t == 1) {
          // One row: the three column ranges are contiguous already.
          char* base = static_cast<char*>(qkv.data);
          const size_t es = dtype_size(qkv.dtype);
          lq = TensorView(base, qkv.dtype, {1, c.num_heads, c.head_dim});
          lk = TensorView(base + c.q_size() * es, qkv.dtype, {1, c.num_kv_heads, c.head_dim});
          lv = TensorView(base + (c.q_size() + c.kv_size()) * es, qkv.dtype, {1, c.num_kv_heads, c.head_dim});
        } else {
          be.split_columns(qkv, {q2, k2, v2});
        }
      } else {
        be.linear(hidden, *l.q, q2);
        be.linear(hidden, *l.k, k2);
        be.linear(hidden, *l.v, v2);
      }
      RopeParams rp;
      rp.q = lq;
      rp.k = lk;
      rp.positions = m.positions;
      rp.inv_freq = inv_freq_.view;
      rp.rotary_dim = c.head_dim;
      AttentionParams ap;
      ap.q = lq;
      ap.out = attn;
      ap.cache = kv[li];
      ap.pages = m.pages;
      ap.num_heads = c.num_heads;
      ap.num_kv_heads = c.num_kv_heads;
      ap.head_dim = c.head_dim;
      ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      ap.sliding_window = l.sliding_window;
      be.rope_kv_attention(rp, lv, m.slots, ap);
      if (fuse) {
        const TensorView gu = gate_up_.view.rows(0, t);
        be.linear_fused(attn2, *l.o, residual, LinearFusion{{}, 0.f, residual});
        if (fusion.swiglu) {
          be.linear_fused(residual, *l.gate_up, gate, LinearFusion{l.post_norm.view, eps, {}, true});
        } else {
          be.linear_fused(residual, *l.gate_up, gu, LinearFusion{l.post_norm.view, eps, {}});
          be.swiglu(gu, gate);
        }
        be.linear_fused(gate, *l.down, residual, LinearFusion{{}, 0.f, residual});
        continue;
      }
      be.linear(attn2, *l.o, hidden);
      be.add_rms_norm(hidden, residual, l.post_norm.view, eps, hidden);
      if (l.gate_up) {
        const TensorView gu = gate_up_.view.rows(0, t);
        be.linear(hidden, *l.gate_up, gu);
        be.swiglu(gu, gate);
      } else {
        const TensorView up = up_.view.rows(0, t);
        be.linear(hidden, *l.gate, gate);
        be.linear(hidden, *l.up, up);
        be.silu_mul(gate, up, gate);
      }
      be.linear(gate, *l.down, hidden);
      const TensorView& next_norm = li + 1 < c.num_layers ? layers_[li + 1]->input_norm.view : final_norm_.view;
      be.add_rms_norm(hidden, residual, next_norm, eps, hidden);
    }
    if (fuse) be.rms_norm(residual, final_norm_.view, eps, hidden);
  }
  if (r == 0) return TensorView();
  const TensorView gathered = gathered_.view.rows(0, r);
  const TensorView logits_act = logits_act_.view.rows(0, r);
  be.gather_rows(hidden, m.rows, gathered);
  be.linear(gathered, *lm_head_, logits_act);
  if (logits_act.dtype == DType::kF32) return logits_act;
  const TensorView out = logits_f32_.view.rows(0, r);
  be.convert(logits_act, out);
  return out;
}

Status Model::sample(SampleBatch* sample, std::vector<int32_t>* ids) {
  RETURN_IF_ERROR(sample_async(sample));
  return wait_sample(ids);
}

Status Model::sample_async(SampleBatch* sample) {
  Backend& be = *backend_;
  const int n = static_cast<int>(sample->rows.size());
  for (const SampleRow& row : sample->rows) {
    if (kept_logits_.empty() || row.logits_row < 0 || row.logits_row >= kept_logits_.dim(0))
      return invalid_argument("sample: logits_row " + std::to_string(row.logits_row) + " is not a row of the last forward");
  }
  num_waiting_ = n;
  num_drawn_ = n;
  if (n == 0) return ok_status();
  if (sample_ids_.view.empty() || sample_ids_.view.numel() < n) {
    ASSIGN_OR_RETURN(sample_ids_, be.allocate_tensor(DType::kI32, {std::max<int64_t>(n, 2 * sample_ids_.view.numel())}));
  }
  sample->logits = kept_logits_;
  sample->out_ids = sample_ids_.view.rows(0, n);
  be.sample(*sample);
  be.download_async(sample->out_ids.data, static_cast<size_t>(n) * sizeof(int32_t));
  return ok_status();
}

Status Model::wait_sample(std::vector<int32_t>* ids) {
  if (num_waiting_ < 0) return failed_precondition("wait_sample: no sample_async() to wait for");
  const int n = num_waiting_;
  num_waiting_ = -1;
  if (n == 0) {
    ids->clear();
    return ok_status();
  }
  const auto* drawn = static_cast<const int32_t*>(backend_->download_wait());
  ids->assign(drawn, drawn + n);
  return ok_status();
}

}  // namespace tandem
