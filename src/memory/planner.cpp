#include "memory/planner.h"

#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "memory/byte_size.h"
#include "memory/kv_pool.h"

namespace tandem::memory {
namespace {

// Split-K decode attention: partial outputs per split (FlashDecoding style).
constexpr int64_t kMaxDecodeSplits = 16;
// From this many tokens in a step, int4 linears need scratch of up to N * K * 2
// bytes: the tensor-core GEMM's split-K partials up to 256 rows (its split rule
// keeps them within that), the layer dequantized to fp16 above. At most 16 rows
// run the GEMVs, whose small split-K sums the arena slack covers.
constexpr int64_t kInt4ScratchMinTokens = 17;

int64_t round_up(int64_t v, int64_t granule) { return granule <= 1 ? v : (v + granule - 1) / granule * granule; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

Status validate(const std::vector<PlanModelInput>& models, const PlanOptions& o) {
  if (models.empty()) return invalid_argument("no models to plan (give at least one --model NAME=PATH)");
  std::set<std::string> names;
  for (const auto& m : models) {
    if (m.name.empty()) return invalid_argument("a model has an empty name");
    if (!names.insert(m.name).second) return invalid_argument("model name '" + m.name + "' is given twice");
    if (!(m.weight > 0) || !std::isfinite(m.weight))
      return invalid_argument("model '" + m.name + "' has a non-positive weight");
    if (m.max_model_len < 0) return invalid_argument("model '" + m.name + "' has a negative max-model-len");
    if (m.max_model_len > m.config.max_position_embeddings)
      return invalid_argument("max-model-len " + std::to_string(m.max_model_len) + " of model '" + m.name +
                              "' exceeds its max_position_embeddings " +
                              std::to_string(m.config.max_position_embeddings));
    if (o.max_model_len > m.config.max_position_embeddings)
      return invalid_argument("max-model-len " + std::to_string(o.max_model_len) + " exceeds model '" + m.name +
                              "' max_position_embeddings " + std::to_string(m.config.max_position_embeddings));
  }
  if (o.budget_bytes <= 0) return invalid_argument("the budget must be positive");
  if (o.max_model_len < 0) return invalid_argument("max-model-len must be positive");
  if (o.max_num_seqs <= 0) return invalid_argument("max-num-seqs must be positive");
  if (o.max_num_batched_tokens <= 0) return invalid_argument("max-num-batched-tokens must be positive");
  if (o.max_num_batched_tokens < o.max_num_seqs)
    return invalid_argument("max-num-batched-tokens " + std::to_string(o.max_num_batched_tokens) +
                            " is below max-num-seqs " + std::to_string(o.max_num_seqs) +
                            " (every running sequence decodes one token per step)");
  if (o.page_size <= 0) return invalid_argument("page size must be positive");
  if (!is_float_dtype(o.kv_dtype)) return invalid_argument("the KV cache dtype must be a float type");
  if (!(o.kv_reserved_fraction >= 0 && o.kv_reserved_fraction <= 1))
    return invalid_argument("the KV reserved fraction must be within [0, 1]");
  if (o.chunk_bytes < 0) return invalid_argument("chunk bytes must not be negative");
  for (const auto& m : models) {
    const int64_t layer_page = o.page_size * m.config.num_kv_heads * m.config.head_dim *
                               static_cast<int64_t>(dtype_size(o.kv_dtype));
    if (o.chunk_bytes > 0 && o.chunk_bytes % layer_page != 0)
      return invalid_argument("chunk of " + std::to_string(o.chunk_bytes) + " bytes is not a multiple of model '" +
                              m.name + "' layer-page of " + std::to_string(layer_page) + " bytes");
  }
  return ok_status();
}

// Plans without alternatives; the options are valid.
Plan compute(const std::vector<PlanModelInput>& models, const PlanOptions& o) {
  Plan plan;
  plan.options = o;
  plan.budget_bytes = o.budget_bytes;
  const bool gpu = o.device == PlanDevice::kCuda;
  const int64_t granule = gpu ? kDeviceAllocGranularity : 1;
  plan.process_overhead_bytes = o.overheads.cuda_context_bytes;
  plan.fixed_bytes = plan.process_overhead_bytes;

  std::vector<KvPageGeometry> geometries;
  for (const auto& in : models) {
    ModelPlan m;
    m.name = in.name;
    m.path = in.path;
    m.quant = describe_weights(in.config);
    m.weight_bytes = weight_bytes(in.config);
    // What the backend holds: the CUDA backend unpacks int4 zeros (see weights.h); the
    // CPU backend's layout is not bounded by the plan (host memory, no arena).
    m.weight_alloc_bytes = gpu ? round_up(cuda_resident_weight_bytes(in.config), granule) : m.weight_bytes;
    m.kv_bytes_per_token = in.config.kv_bytes_per_token(o.kv_dtype);
    m.page_bytes = m.kv_bytes_per_token * o.page_size;
    // An explicit length above a model's limit is refused in validate(); alternatives may probe past it.
    m.max_model_len = o.max_model_len > 0 ? std::min<int64_t>(o.max_model_len, in.config.max_position_embeddings)
                                          : in.config.max_position_embeddings;
    if (in.max_model_len > 0) m.max_model_len = std::min(m.max_model_len, in.max_model_len);
    // A sliding window bounds one sequence's live KV to the window plus the page being filled.
    m.min_kv_tokens = m.max_model_len;
    const int64_t window = in.config.uniform_sliding_window();  // 0 when any layer attends fully
    if (window > 0) m.min_kv_tokens = std::min(m.min_kv_tokens, round_up(window, o.page_size) + o.page_size);
    m.activation = activation_breakdown(in.config, o, m.max_model_len);
    m.activation_bytes = round_up(m.activation.total(), granule);
    m.overhead_bytes = o.overheads.per_model_bytes();
    plan.fixed_bytes += m.weight_alloc_bytes + m.activation_bytes + m.overhead_bytes;
    geometries.push_back({in.config.num_layers, o.page_size, in.config.num_kv_heads, in.config.head_dim,
                          static_cast<int64_t>(dtype_size(o.kv_dtype))});
    plan.models.push_back(m);
  }

  plan.chunk_bytes = o.chunk_bytes > 0 ? o.chunk_bytes : choose_chunk_bytes(geometries);
  int64_t min_chunks_total = 0;
  std::vector<int64_t> min_chunks;
  for (ModelPlan& m : plan.models) {
    m.pages_per_chunk = plan.chunk_bytes / m.page_bytes;
    const int64_t tokens_per_chunk = m.pages_per_chunk * o.page_size;
    min_chunks.push_back(tokens_per_chunk > 0 ? ceil_div(m.min_kv_tokens, tokens_per_chunk) : 0);
    min_chunks_total += min_chunks.back();
  }
  plan.required_bytes = plan.fixed_bytes + min_chunks_total * plan.chunk_bytes;
  const bool pages_fit = std::all_of(plan.models.begin(), plan.models.end(),
                                     [](const ModelPlan& m) { return m.pages_per_chunk > 0; });
  const int64_t kv_room = o.budget_bytes - plan.fixed_bytes;
  plan.num_chunks = kv_room > 0 ? kv_room / plan.chunk_bytes : 0;
  plan.fits = pages_fit && plan.required_bytes <= o.budget_bytes && plan.num_chunks >= min_chunks_total;
  if (!plan.fits) {
    plan.shortfall_bytes = std::max<int64_t>(0, plan.required_bytes - o.budget_bytes);
    std::ostringstream why;
    if (!pages_fit) {
      why << "a KV page is larger than the chunk of " << format_binary(plan.chunk_bytes);
    } else if (kv_room <= 0) {
      why << "weights, workspace and overheads alone take " << format_both(plan.fixed_bytes)
          << ", over the budget of " << format_both(o.budget_bytes) << "; with one max-length sequence of KV per "
          << "model it needs " << format_both(plan.required_bytes) << ", "
          << format_both(plan.required_bytes - o.budget_bytes) << " more";
    } else {
      why << "needs " << format_both(plan.required_bytes) << " (weights, workspace, overheads and one "
          << "max-length sequence of KV per model), " << format_both(plan.shortfall_bytes)
          << " more than the budget of " << format_both(o.budget_bytes);
    }
    plan.reason = why.str();
    plan.num_chunks = 0;
    plan.total_bytes = plan.fixed_bytes;
    return plan;
  }

  // Guarantees: a weighted share of the reserved part, each at least its minimum.
  const int64_t n = plan.num_chunks;
  const bool single = plan.models.size() == 1;
  const double reserved = single ? 1.0 : o.kv_reserved_fraction;
  double weight_sum = 0;
  for (const auto& in : models) weight_sum += in.weight;
  int64_t guaranteed_total = 0;
  for (size_t i = 0; i < plan.models.size(); ++i) {
    const auto share = static_cast<int64_t>(std::floor(static_cast<double>(n) * reserved * models[i].weight / weight_sum));
    plan.models[i].guaranteed_chunks = std::max(min_chunks[i], share);
    guaranteed_total += plan.models[i].guaranteed_chunks;
  }
  if (guaranteed_total > n) {
    // Minimums pushed past the pool: minimums plus a weighted split of what is left.
    const int64_t rest = n - min_chunks_total;
    guaranteed_total = 0;
    for (size_t i = 0; i < plan.models.size(); ++i) {
      plan.models[i].guaranteed_chunks =
          min_chunks[i] + static_cast<int64_t>(std::floor(static_cast<double>(rest) * models[i].weight / weight_sum));
      guaranteed_total += plan.models[i].guaranteed_chunks;
    }
  }
  plan.shared_chunks = n - guaranteed_total;
  int64_t planned_total = 0;
  for (size_t i = 0; i < plan.models.size(); ++i) {
    ModelPlan& m = plan.models[i];
    m.planned_chunks = m.guaranteed_chunks + static_cast<int64_t>(std::floor(
                                                 static_cast<double>(plan.shared_chunks) * models[i].weight / weight_sum));
    planned_total += m.planned_chunks;
  }
  plan.models[0].planned_chunks += n - planned_total;  // rounding leftovers
  for (ModelPlan& m : plan.models) {
    const int64_t tokens_per_chunk = m.pages_per_chunk * o.page_size;
    m.kv_cache_bytes = m.planned_chunks * plan.chunk_bytes;
    m.guaranteed_kv_tokens = m.guaranteed_chunks * tokens_per_chunk;
    m.max_kv_tokens = n * tokens_per_chunk;
  }
  plan.kv_pool_bytes = n * plan.chunk_bytes;
  plan.total_bytes = plan.fixed_bytes + plan.kv_pool_bytes;
  return plan;
}

// Largest value in [lo, hi] for which `fits(v)` holds, fits monotone; lo-1 if none.
int64_t largest_fitting(int64_t lo, int64_t hi, const std::function<bool(int64_t)>& fits) {
  int64_t best = lo - 1;
  while (lo <= hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

std::string usage(const Plan& p) { return format_decimal(p.total_bytes) + " of " + format_decimal(p.budget_bytes); }

void add_alternatives(const std::vector<PlanModelInput>& models, Plan* plan) {
  const PlanOptions& o = plan->options;
  auto& alts = plan->alternatives;
  alts.push_back("a budget of at least " + format_both(plan->required_bytes) + " (--gpu-budget " +
                 std::to_string(ceil_div(plan->required_bytes, kMiB)) + "MiB)");

  // Shorter context: the longest max-model-len (a multiple of the page size) that fits.
  int64_t longest = 0;
  for (const auto& m : plan->models) longest = std::max(longest, m.max_model_len);
  const int64_t len_pages = largest_fitting(1, longest / o.page_size, [&](int64_t pages) {
    PlanOptions t = o;
    t.max_model_len = pages * o.page_size;
    return compute(models, t).fits;
  });
  if (len_pages >= 1 && len_pages * o.page_size < longest) {
    PlanOptions t = o;
    t.max_model_len = len_pages * o.page_size;
    alts.push_back("--max-model-len " + std::to_string(t.max_model_len) + " (from " + std::to_string(longest) +
                   "): " + usage(compute(models, t)));
  }
  // Fewer sequences per step.
  const int64_t seqs = largest_fitting(1, o.max_num_seqs - 1, [&](int64_t s) {
    PlanOptions t = o;
    t.max_num_seqs = s;
    return compute(models, t).fits;
  });
  if (seqs >= 1) {
    PlanOptions t = o;
    t.max_num_seqs = seqs;
    alts.push_back("--max-num-seqs " + std::to_string(seqs) + " (from " + std::to_string(o.max_num_seqs) +
                   "): " + usage(compute(models, t)));
  }
  // Fewer tokens per step (not below max-num-seqs).
  const int64_t toks = largest_fitting(o.max_num_seqs, o.max_num_batched_tokens - 1, [&](int64_t tk) {
    PlanOptions t = o;
    t.max_num_batched_tokens = tk;
    return compute(models, t).fits;
  });
  if (toks >= o.max_num_seqs) {
    PlanOptions t = o;
    t.max_num_batched_tokens = toks;
    alts.push_back("--max-num-batched-tokens " + std::to_string(toks) + " (from " +
                   std::to_string(o.max_num_batched_tokens) + "): " + usage(compute(models, t)));
  }
  // Another quantization: each unquantized model as AWQ int4 g128 (4-bit is the smallest format served).
  std::vector<PlanModelInput> all_awq = models;
  bool any_unquantized = false;
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i].config.quant.is_int4()) continue;
    QuantConfig awq;
    awq.method = QuantMethod::kAwq;
    awq.bits = 4;
    awq.group_size = 128;
    auto q = with_quant(models[i].config, awq);
    if (!q.ok()) continue;
    any_unquantized = true;
    all_awq[i].config = *q;
    std::vector<PlanModelInput> one = models;
    one[i].config = *q;
    const Plan p = compute(one, o);
    std::string alt = "model '" + models[i].name + "' as AWQ int4 g128 (weights " +
                      format_decimal(weight_bytes(models[i].config)) + " -> " + format_decimal(weight_bytes(*q)) + "): ";
    if (p.fits) {
      alt += "fits, " + usage(p);
    } else {
      alt += "still " + format_decimal(p.shortfall_bytes) + " over";
      const int64_t pages = largest_fitting(1, longest / o.page_size, [&](int64_t n) {
        PlanOptions t = o;
        t.max_model_len = n * o.page_size;
        return compute(one, t).fits;
      });
      if (pages >= 1) alt += "; fits with it and --max-model-len " + std::to_string(pages * o.page_size);
    }
    alts.push_back(alt);
  }
  if (any_unquantized && models.size() > 1) {
    const Plan p = compute(all_awq, o);
    if (p.fits) alts.push_back("every unquantized model as AWQ int4 g128: fits, " + usage(p));
  }
  // Serving fewer models.
  if (models.size() > 1) {
    for (size_t i = 0; i < models.size(); ++i) {
      std::vector<PlanModelInput> rest;
      for (size_t j = 0; j < models.size(); ++j)
        if (j != i) rest.push_back(models[j]);
      const Plan p = compute(rest, o);
      if (p.fits) alts.push_back("without model '" + models[i].name + "': fits, " + usage(p));
    }
  }
}

}  // namespace

ActivationBreakdown activation_breakdown(const ModelConfig& s, const PlanOptions& o, int64_t max_model_len) {
  const bool gpu = o.device == PlanDevice::kCuda;
  const int64_t a = gpu ? 2 : 4;  // activation bytes: fp16 on GPU, fp32 on CPU
  const int64_t t = o.max_num_batched_tokens, n = o.max_num_seqs;
  const int64_t h = s.hidden_size, inter = s.intermediate_size, d = s.head_dim, v = s.vocab_size;
  const int64_t nq = s.num_heads, nkv = s.num_kv_heads;
  ActivationBreakdown b;
  b.residual = t * h * a;
  b.normed = t * h * a;
  b.attention_phase = t * (nq + 2 * nkv) * d * a + t * nq * d * a;
  // The CUDA backend fuses q/k/v (and gate/up) at load, GPTQ act-order aside:
  // the fused output is split into q, k, v, so both live at once.
  const bool fused = gpu && !s.quant.desc_act;
  if (fused) b.attention_phase += t * (nq + 2 * nkv) * d * a;
  b.mlp_phase = t * 2 * inter * a + t * inter * a;
  b.layer_out = t * h * a;
  b.logits = n * v * 4;
  b.sampling = n * v * 8;
  if (gpu) {
    b.decode_partials = n * nq * kMaxDecodeSplits * (d + 2) * 4;
    if (s.quant.is_int4() && t >= kInt4ScratchMinTokens)
      b.dequant_scratch = largest_linear_elements(s, fused) * 2;
  }
  b.rope_table = max_model_len * d * 4;
  b.metadata = n * ceil_div(max_model_len, o.page_size) * 4 + t * 16;
  if (gpu) b.arena_slack = kCudaArenaSlackBytes;
  return b;
}

StatusOr<Plan> make_plan(const std::vector<PlanModelInput>& models, const PlanOptions& options) {
  RETURN_IF_ERROR(validate(models, options));
  Plan plan = compute(models, options);
  if (!plan.fits) add_alternatives(models, &plan);
  return plan;
}

}  // namespace tandem::memory
