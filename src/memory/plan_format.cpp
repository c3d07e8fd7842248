#include "memory/plan_format.h"

#include <cstdio>
#include <sstream>

#include "memory/byte_size.h"

namespace tandem::memory {
namespace {

const char* device_name(PlanDevice d) { return d == PlanDevice::kCuda ? "cuda" : "cpu"; }

std::string both_short(int64_t bytes) { return format_decimal(bytes) + " / " + format_binary(bytes); }

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return (v < 0 ? "-" : "") + s;
}

}  // namespace

nlohmann::json plan_to_json(const Plan& p) {
  using nlohmann::json;
  json j;
  j["budget_bytes"] = p.budget_bytes;
  j["fits"] = p.fits;
  j["device"] = device_name(p.options.device);
  j["total_bytes"] = p.total_bytes;
  j["required_bytes"] = p.required_bytes;
  j["shortfall_bytes"] = p.shortfall_bytes;
  j["process_overhead_bytes"] = p.process_overhead_bytes;
  j["fixed_bytes"] = p.fixed_bytes;
  j["kv_pool_bytes"] = p.kv_pool_bytes;
  j["chunk_bytes"] = p.chunk_bytes;
  j["num_chunks"] = p.num_chunks;
  j["shared_chunks"] = p.shared_chunks;
  j["page_size"] = p.options.page_size;
  j["max_num_seqs"] = p.options.max_num_seqs;
  j["max_num_batched_tokens"] = p.options.max_num_batched_tokens;
  j["kv_reserved_fraction"] = p.options.kv_reserved_fraction;
  j["overheads"] = {{"cuda_context_bytes", p.options.overheads.cuda_context_bytes},
                    {"cublas_bytes_per_model", p.options.overheads.cublas_bytes_per_model},
                    {"cuda_graph_bytes_per_model", p.options.overheads.cuda_graph_bytes_per_model},
                    {"stream_bytes_per_model", p.options.overheads.stream_bytes_per_model},
                    {"source", p.options.overheads.source}};
  json models = json::array();
  for (const ModelPlan& m : p.models) {
    const ActivationBreakdown& a = m.activation;
    models.push_back({{"name", m.name},
                      {"path", m.path},
                      {"weights", m.quant},
                      {"weight_bytes", m.weight_bytes},
                      {"weight_alloc_bytes", m.weight_alloc_bytes},
                      {"kv_bytes_per_token", m.kv_bytes_per_token},
                      {"page_bytes", m.page_bytes},
                      {"pages_per_chunk", m.pages_per_chunk},
                      {"kv_cache_bytes", m.kv_cache_bytes},
                      {"activation_bytes", m.activation_bytes},
                      {"activation", {{"residual", a.residual},
                                      {"normed", a.normed},
                                      {"attention_phase", a.attention_phase},
                                      {"mlp_phase", a.mlp_phase},
                                      {"layer_out", a.layer_out},
                                      {"logits", a.logits},
                                      {"sampling", a.sampling},
                                      {"decode_partials", a.decode_partials},
                                      {"dequant_scratch", a.dequant_scratch},
                                      {"rope_table", a.rope_table},
                                      {"arena_slack", a.arena_slack},
                                      {"metadata", a.metadata}}},
                      {"overhead_bytes", m.overhead_bytes},
                      {"max_model_len", m.max_model_len},
                      {"min_kv_tokens", m.min_kv_tokens},
                      {"guaranteed_chunks", m.guaranteed_chunks},
                      {"planned_chunks", m.planned_chunks},
                      {"guaranteed_kv_tokens", m.guaranteed_kv_tokens},
                      {"max_kv_tokens", m.max_kv_tokens}});
  }
  j["models"] = models;
  if (!p.fits) {
    j["reason"] = p.reason;
    j["alternatives"] = p.alternatives;
  }
  return j;
}

std::string plan_to_table(const Plan& p) {
  std::ostringstream os;
  const PlanOptions& o = p.options;
  os << "memory plan: budget " << format_both(p.budget_bytes) << " on " << device_name(o.device) << "; page "
     << o.page_size << " tokens, max-num-seqs " << o.max_num_seqs << ", max-num-batched-tokens "
     << o.max_num_batched_tokens << "\n";
  os << "overheads: " << o.overheads.source << "\n\n";

  constexpr int kLabel = 29, kCol = 28;
  auto row = [&](const std::string& label, const auto& cell) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %-*s", kLabel, label.c_str());
    os << buf;
    for (const ModelPlan& m : p.models) {
      std::snprintf(buf, sizeof buf, "%-*s", kCol, cell(m).c_str());
      os << buf;
    }
    os << "\n";
  };
  row("", [](const ModelPlan& m) { return m.name; });
  row("weights format", [](const ModelPlan& m) { return m.quant; });
  row("weights", [](const ModelPlan& m) { return both_short(m.weight_bytes); });
  row("workspace", [](const ModelPlan& m) { return both_short(m.activation_bytes); });
  row("overheads (cuBLAS, graphs)", [](const ModelPlan& m) { return both_short(m.overhead_bytes); });
  row("KV bytes per token", [](const ModelPlan& m) { return format_binary(m.kv_bytes_per_token); });
  row("KV page (" + std::to_string(o.page_size) + " tokens)",
      [](const ModelPlan& m) { return format_binary(m.page_bytes); });
  row("max model len", [](const ModelPlan& m) { return with_commas(m.max_model_len); });
  if (p.fits) {
    row("pages per chunk", [](const ModelPlan& m) { return std::to_string(m.pages_per_chunk); });
    row("KV guaranteed", [&](const ModelPlan& m) {
      return std::to_string(m.guaranteed_chunks) + " chunks, " + with_commas(m.guaranteed_kv_tokens) + " tok";
    });
    row("KV planned share", [](const ModelPlan& m) { return both_short(m.kv_cache_bytes); });
    row("KV max tokens (others idle)", [](const ModelPlan& m) { return with_commas(m.max_kv_tokens); });
  }
  os << "\n";
  os << "  CUDA context (process)       " << both_short(p.process_overhead_bytes) << "\n";
  if (p.fits) {
    os << "  KV pool                      " << p.num_chunks << " chunks x " << format_binary(p.chunk_bytes) << " = "
       << both_short(p.kv_pool_bytes) << " (" << p.shared_chunks << " shared)\n";
    os << "  total                        " << both_short(p.total_bytes) << " of " << both_short(p.budget_bytes)
       << ", " << both_short(p.budget_bytes - p.total_bytes) << " unplanned\n";
    os << "fits\n";
  } else {
    os << "  required                     " << both_short(p.required_bytes) << " of " << both_short(p.budget_bytes)
       << "\n";
    os << "DOES NOT FIT: " << p.reason << "\n";
    if (!p.alternatives.empty()) {
      os << "what would make it fit (each on its own):\n";
      for (const std::string& alt : p.alternatives) os << "  - " << alt << "\n";
    }
  }
  return os.str();
}

}  // namespace tandem::memory
