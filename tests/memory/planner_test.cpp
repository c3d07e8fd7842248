#include "memory/planner.h"

#include <numeric>
#include <regex>

#include <gtest/gtest.h>

#include "memory/byte_size.h"
#include "memory/weights.h"

namespace tandem::memory {
namespace {

PlanModelInput model(const std::string& name, const std::string& file, double weight = 1.0) {
  PlanModelInput in;
  in.name = name;
  in.path = std::string(TANDEM_SOURCE_DIR) + "/configs/models/" + file + ".json";
  auto c = load_model_config(in.path);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  if (c.ok()) in.config = *c;
  in.weight = weight;
  return in;
}

std::vector<PlanModelInput> deepseek_mistral() {
  return {model("coder", "deepseek-coder-33b-instruct-awq"), model("general", "mistral-7b-v0.1-awq")};
}
std::vector<PlanModelInput> qwen_pair() {
  return {model("coder", "qwen2.5-coder-32b-instruct-awq"), model("general", "qwen2.5-7b-instruct")};
}

PlanOptions options(int64_t budget) {
  PlanOptions o;
  o.budget_bytes = budget;
  return o;
}

Plan plan_ok(const std::vector<PlanModelInput>& m, const PlanOptions& o) {
  auto p = make_plan(m, o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? *p : Plan{};
}

int64_t round2mib(int64_t v) { return (v + kMiB * 2 - 1) / (kMiB * 2) * (kMiB * 2); }

TEST(Planner, MistralWorkspaceByHand) {
  // T = 8192 tokens, S = 256 sequences, L = 32768, fp16 activations (a = 2), H 4096, I 14336,
  // 32 q heads, 8 kv heads, d 128, V 32000.
  const auto m = model("general", "mistral-7b-v0.1-awq");
  const ActivationBreakdown b = activation_breakdown(m.config, options(kGB), 32768);
  EXPECT_EQ(b.residual, 8192LL * 4096 * 2);
  EXPECT_EQ(b.normed, 8192LL * 4096 * 2);
  // q, k, v and the attention output, plus the fused q/k/v output they are split from.
  EXPECT_EQ(b.attention_phase, 2 * 8192LL * (32 + 2 * 8) * 128 * 2 + 8192LL * 32 * 128 * 2);
  EXPECT_EQ(b.mlp_phase, 8192LL * 2 * 14336 * 2 + 8192LL * 14336 * 2);
  EXPECT_EQ(b.layer_out, 8192LL * 4096 * 2);
  EXPECT_EQ(b.logits, 256LL * 32000 * 4);
  EXPECT_EQ(b.sampling, 256LL * 32000 * 8);
  EXPECT_EQ(b.decode_partials, 256LL * 32 * 16 * 130 * 4);
  EXPECT_EQ(b.dequant_scratch, 4096LL * 2 * 14336 * 2);  // gate_up (fused at load) is the largest linear
  EXPECT_EQ(b.rope_table, 32768LL * 128 * 4);
  EXPECT_EQ(b.metadata, 256LL * 2048 * 4 + 8192LL * 16);
  EXPECT_EQ(b.arena_slack, 64LL << 20);
  EXPECT_EQ(b.total(), 3 * 67108864LL + 268435456 + 704643072 + 32768000 + 65536000 + 68157440 + 234881024 + 16777216 +
                           2228224 + (64LL << 20));
}

// Steps of 17..256 tokens run the tensor-core int4 GEMM, whose split-K partials
// need up to the same N * K * 2 bytes; 16 tokens or fewer run the GEMVs.
TEST(Planner, Int4ScratchFromSeventeenTokens) {
  const auto m = model("general", "mistral-7b-v0.1-awq");
  PlanOptions o = options(kGB);
  o.max_num_batched_tokens = 16;
  o.max_num_seqs = 16;
  EXPECT_EQ(activation_breakdown(m.config, o, 32768).dequant_scratch, 0);
  o.max_num_batched_tokens = 17;
  EXPECT_EQ(activation_breakdown(m.config, o, 32768).dequant_scratch, 4096LL * 2 * 14336 * 2);
}

TEST(Planner, CpuWorkspaceIsFp32WithoutGpuScratch) {
  const auto m = model("general", "mistral-7b-v0.1-awq");
  PlanOptions o = options(kGB);
  o.device = PlanDevice::kCpu;
  const ActivationBreakdown b = activation_breakdown(m.config, o, 32768);
  EXPECT_EQ(b.residual, 8192LL * 4096 * 4);
  EXPECT_EQ(b.decode_partials, 0);
  EXPECT_EQ(b.dequant_scratch, 0);
  EXPECT_EQ(b.arena_slack, 0);
}

TEST(Planner, DeepSeekMistralIn96GB) {
  const auto models = deepseek_mistral();
  const Plan p = plan_ok(models, options(96 * kGB));
  ASSERT_TRUE(p.fits) << p.reason;
  EXPECT_EQ(p.chunk_bytes, 62 * kMiB);  // lcm(3.875 MiB, 2 MiB) = 62 MiB: 16 and 31 pages, no waste
  ASSERT_EQ(p.models.size(), 2u);
  EXPECT_EQ(p.models[0].pages_per_chunk, 16);
  EXPECT_EQ(p.models[1].pages_per_chunk, 31);
  EXPECT_EQ(p.models[0].weight_bytes, 18'008'653'824);
  EXPECT_EQ(p.models[1].weight_bytes, 4'150'796'288);
  // As the CUDA backend holds them: int4 zeros unpacked to 16 bits (+1.5 bytes a group and
  // column; 6,214,656 bytes a layer) and fp32 norms (125 norms of 7168 at +2 bytes).
  EXPECT_EQ(p.models[0].weight_alloc_bytes, round2mib(18'008'653'824 + 62 * 6'214'656 + 125 * 7168 * 2));
  EXPECT_EQ(p.models[0].kv_bytes_per_token, 253952);
  EXPECT_EQ(p.models[1].kv_bytes_per_token, 131072);
  // Fixed bytes by hand: context + per model (weights + workspace, each rounded to 2 MiB, + overheads).
  const Overheads ov = default_cuda_overheads();
  int64_t fixed = ov.cuda_context_bytes;
  for (size_t i = 0; i < 2; ++i) {
    const ActivationBreakdown b = activation_breakdown(models[i].config, p.options, p.models[i].max_model_len);
    fixed += round2mib(cuda_resident_weight_bytes(models[i].config)) + round2mib(b.total()) + ov.per_model_bytes();
  }
  EXPECT_EQ(p.fixed_bytes, fixed);
  EXPECT_EQ(p.num_chunks, (96 * kGB - fixed) / (62 * kMiB));
  EXPECT_EQ(p.total_bytes, fixed + p.num_chunks * 62 * kMiB);
  EXPECT_LE(p.total_bytes, p.budget_bytes);
  EXPECT_LT(p.budget_bytes - p.total_bytes, p.chunk_bytes);
  // Guarantees: half the pool split evenly; the rest shared; planned shares add up to the pool.
  EXPECT_EQ(p.models[0].guaranteed_chunks, p.num_chunks / 4);
  EXPECT_EQ(p.models[1].guaranteed_chunks, p.num_chunks / 4);
  EXPECT_EQ(p.shared_chunks, p.num_chunks - 2 * (p.num_chunks / 4));
  EXPECT_EQ(p.models[0].kv_cache_bytes + p.models[1].kv_cache_bytes, p.kv_pool_bytes);
  EXPECT_EQ(p.models[0].max_kv_tokens, p.num_chunks * 16 * 16);
  EXPECT_EQ(p.models[1].max_kv_tokens, p.num_chunks * 31 * 16);
  EXPECT_EQ(p.models[0].guaranteed_kv_tokens, p.models[0].guaranteed_chunks * 256);
  // DeepSeek needs a full 16384-token sequence; Mistral only its 4096 window + the page being filled.
  EXPECT_EQ(p.models[0].min_kv_tokens, 16384);
  EXPECT_EQ(p.models[1].min_kv_tokens, 4096 + 16);
}

TEST(Planner, QwenPairIn80GiB) {
  const Plan p = plan_ok(qwen_pair(), options(80 * kGiB));
  ASSERT_TRUE(p.fits) << p.reason;
  EXPECT_EQ(p.chunk_bytes, 56 * kMiB);  // lcm(4 MiB, 896 KiB, 2 MiB) = 28 MiB, doubled to pass 32 MiB
  EXPECT_EQ(p.models[0].pages_per_chunk, 14);
  EXPECT_EQ(p.models[1].pages_per_chunk, 64);
  EXPECT_EQ(p.models[1].weight_bytes, 15'231'233'024);
  EXPECT_EQ(p.models[1].weight_alloc_bytes, round2mib(15'231'233'024 + 57 * 3584 * 2));  // bf16 norms -> fp32
  EXPECT_EQ(p.models[0].min_kv_tokens, 32768);  // use_sliding_window false: full attention
  EXPECT_LE(p.total_bytes, p.budget_bytes);
}

TEST(Planner, WeightsSplitTheReserve) {
  auto models = deepseek_mistral();
  models[0].weight = 3;
  const Plan p = plan_ok(models, options(96 * kGB));
  ASSERT_TRUE(p.fits);
  EXPECT_EQ(p.models[0].guaranteed_chunks, static_cast<int64_t>(p.num_chunks * 0.5 * 3 / 4));
  EXPECT_EQ(p.models[1].guaranteed_chunks, static_cast<int64_t>(p.num_chunks * 0.5 * 1 / 4));
}

TEST(Planner, SingleModelIsGuaranteedTheWholePool) {
  const Plan p = plan_ok({model("general", "mistral-7b-v0.1-awq")}, options(24 * kGiB));
  ASSERT_TRUE(p.fits);
  EXPECT_EQ(p.models[0].guaranteed_chunks, p.num_chunks);
  EXPECT_EQ(p.shared_chunks, 0);
}

TEST(Planner, CpuHasNoDeviceOverheads) {
  PlanOptions o = options(64 * kGiB);
  o.device = PlanDevice::kCpu;
  o.overheads = cpu_overheads();
  const Plan p = plan_ok({model("general", "mistral-7b-v0.1-awq")}, o);
  ASSERT_TRUE(p.fits);
  EXPECT_EQ(p.process_overhead_bytes, 0);
  EXPECT_EQ(p.models[0].overhead_bytes, 0);
  EXPECT_EQ(p.models[0].weight_alloc_bytes, 4'150'796'288);  // no 2 MiB rounding on the host
}

// The integer after `flag ` in the first alternative that mentions it.
int64_t alternative_value(const Plan& p, const std::string& flag) {
  const std::regex re(flag + " ([0-9]+)");
  for (const auto& a : p.alternatives) {
    std::smatch m;
    if (std::regex_search(a, m, re)) return std::stoll(m[1]);
  }
  return -1;
}

TEST(Planner, RefusalSaysByHowMuchAndWhatFits) {
  const auto models = qwen_pair();
  const Plan p = plan_ok(models, options(42 * kGB));
  ASSERT_FALSE(p.fits);
  EXPECT_EQ(p.shortfall_bytes, p.required_bytes - 42 * kGB);
  EXPECT_GT(p.shortfall_bytes, 0);
  EXPECT_NE(p.reason.find("more than the budget of 42.00 GB (39.12 GiB)"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find(format_both(p.shortfall_bytes)), std::string::npos) << p.reason;
  ASSERT_FALSE(p.alternatives.empty());
  EXPECT_NE(p.alternatives[0].find("a budget of at least " + format_both(p.required_bytes)), std::string::npos);

  // The bf16 Qwen2.5-7B as AWQ is offered, and the message says whether that alone fits.
  bool quant_offered = false;
  for (const auto& a : p.alternatives) quant_offered |= a.find("model 'general' as AWQ int4 g128") != std::string::npos;
  EXPECT_TRUE(quant_offered);

  // The offered context length fits, one page more does not.
  const int64_t len = alternative_value(p, "--max-model-len");
  ASSERT_GT(len, 0);
  PlanOptions o = options(42 * kGB);
  o.max_model_len = len;
  EXPECT_TRUE(plan_ok(models, o).fits);
  o.max_model_len = len + 16;
  EXPECT_FALSE(plan_ok(models, o).fits);

  // Likewise the offered number of sequences.
  const int64_t seqs = alternative_value(p, "--max-num-seqs");
  if (seqs > 0) {
    PlanOptions s = options(42 * kGB);
    s.max_num_seqs = seqs;
    EXPECT_TRUE(plan_ok(models, s).fits);
    s.max_num_seqs = seqs + 1;
    EXPECT_FALSE(plan_ok(models, s).fits);
  }
}

TEST(Planner, RefusalWhenWeightsAloneExceed) {
  const Plan p = plan_ok(deepseek_mistral(), options(16 * kGiB));
  ASSERT_FALSE(p.fits);
  EXPECT_NE(p.reason.find("weights, workspace and overheads alone take"), std::string::npos) << p.reason;
  bool without_coder = false;
  for (const auto& a : p.alternatives) without_coder |= a.find("without model 'coder': fits") != std::string::npos;
  EXPECT_TRUE(without_coder);
  EXPECT_EQ(p.num_chunks, 0);
}

TEST(Planner, BadInputIsAnError) {
  PlanOptions o = options(96 * kGB);
  o.max_model_len = 32768;  // DeepSeek allows 16384
  auto p = make_plan(deepseek_mistral(), o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("model 'coder' max_position_embeddings 16384"), std::string::npos)
      << p.status().message();

  auto dup = make_plan({model("a", "mistral-7b-v0.1-awq"), model("a", "qwen2.5-7b-instruct")}, options(kGiB));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("'a' is given twice"), std::string::npos);

  EXPECT_FALSE(make_plan({}, options(kGiB)).ok());
  PlanOptions few = options(96 * kGB);
  few.max_num_batched_tokens = 100;
  few.max_num_seqs = 256;
  auto f = make_plan(deepseek_mistral(), few);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("below max-num-seqs"), std::string::npos);
  EXPECT_FALSE(make_plan(deepseek_mistral(), options(0)).ok());
  PlanOptions chunk = options(96 * kGB);
  chunk.chunk_bytes = 3 * kMiB + 1;
  EXPECT_FALSE(make_plan(deepseek_mistral(), chunk).ok());
}

}  // namespace
}  // namespace tandem::memory
