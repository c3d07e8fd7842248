// The paged, batched CPU forward pass against a naive reference (plain loops in
// double over the whole sequence) on random checkpoints of every variant.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "backend/backend.h"
#include "engine/generate_single.h"
#include "model/model_runner.h"
#include "model/synth.h"
#include "model/weights.h"
#include "sampling/backend_sample.h"
#include "test_util.h"

namespace tandem {
namespace {

using testing::reference_logits;
using testing::relative_max_error;
using testing::TempDir;

struct Variant {
  const char* name;
  SynthOptions opts;
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  SynthOptions base;
  v.push_back({"llama_f32_gqa", base});
  SynthOptions rope = base;
  rope.rope_linear_factor = 4.0f;
  rope.dtype = DType::kBF16;
  v.push_back({"llama_bf16_rope_linear", rope});
  SynthOptions mistral = base;
  mistral.architecture = "MistralForCausalLM";
  mistral.sliding_window = 6;
  mistral.dtype = DType::kF16;
  v.push_back({"mistral_f16_window6", mistral});
  SynthOptions qwen = base;
  qwen.architecture = "Qwen2ForCausalLM";
  qwen.sliding_window = 4;  // configured but disabled (use_sliding_window false)
  qwen.tie_word_embeddings = true;
  qwen.num_kv_heads = 1;
  v.push_back({"qwen2_bias_tied", qwen});
  SynthOptions awq = base;
  awq.quant = "awq";
  awq.group_size = 32;
  awq.dtype = DType::kF16;
  v.push_back({"awq_g32", awq});
  SynthOptions gptq = base;
  gptq.quant = "gptq";
  gptq.group_size = 32;
  gptq.desc_act = true;
  gptq.sym = false;
  v.push_back({"gptq_v1_actorder_asym", gptq});
  SynthOptions gptq2 = base;
  gptq2.quant = "gptq";
  gptq2.group_size = -1;
  gptq2.gptq_format = "gptq_v2";
  gptq2.dtype = DType::kBF16;
  v.push_back({"gptq_v2_sym_channel", gptq2});
  SynthOptions shards = base;
  shards.num_shards = 3;
  shards.head_dim = 32;  // explicit head_dim != hidden / heads
  v.push_back({"sharded_explicit_head_dim", shards});
  return v;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Appends sequence `tokens[begin, end)` of a sequence whose cache uses `pages`
// to the batch; logits wanted for every new token when all_logits.
void add_seq(ForwardBatch& b, const std::vector<int32_t>& tokens, int begin, int end,
             const std::vector<int32_t>& pages, bool all_logits) {
  const int ps = b.page_size;
  if (b.query_start.empty()) b.query_start.push_back(0);
  if (b.page_indptr.empty()) b.page_indptr.push_back(0);
  for (int p = begin; p < end; ++p) {
    if (all_logits || p == end - 1) b.logits_rows.push_back(b.num_tokens());
    b.token_ids.push_back(tokens[p]);
    b.positions.push_back(p);
    b.slot_mapping.push_back(pages[p / ps] * ps + p % ps);
  }
  b.query_start.push_back(b.num_tokens());
  b.kv_len.push_back(end);
  const int used = (end + ps - 1) / ps;
  b.page_indices.insert(b.page_indices.end(), pages.begin(), pages.begin() + used);
  b.page_indptr.push_back(static_cast<int32_t>(b.page_indices.size()));
  b.last_page_len.push_back(end - (used - 1) * ps);
}

class ForwardTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(ForwardTest, MatchesReference) {
  const Variant var = variants()[std::get<0>(GetParam())];
  const bool blas = std::get<1>(GetParam());
  TempDir dir(var.name);
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), var.opts).ok());
  auto cfg = ModelConfig::load(dir.path());
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto host = load_weights_host(*cfg, dir.path());
  ASSERT_TRUE(host.ok()) << host.status().to_string();
  const int vocab = cfg->vocab_size;
  const int n = 23;
  const auto tokens = random_tokens(n, vocab, 7);
  const auto ref = reference_logits(*cfg, *host, tokens);
  const double tol = 2e-5;  // fp32 compute vs double reference, relative to the logit range

  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 32;
  auto runner = LocalModelRunner::create(make_cpu_backend(2, blas), dir.path(), ro);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  // Pages in a scrambled order: the page table, not the page id, decides placement.
  std::vector<int32_t> pages(ro.num_pages);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), std::mt19937(3));
  std::vector<int32_t> pages_a(pages.begin(), pages.begin() + 8), pages_b(pages.begin() + 8, pages.begin() + 16);

  // 1. Whole-prompt prefill, logits at every position.
  {
    ForwardBatch b;
    b.page_size = ro.page_size;
    add_seq(b, tokens, 0, n, pages_a, true);
    std::vector<float> logits;
    ASSERT_TRUE((*runner)->forward(b, &logits).ok());
    ASSERT_EQ(logits.size(), static_cast<size_t>(n) * vocab);
    for (int i = 0; i < n; ++i)
      EXPECT_LT(relative_max_error(logits.data() + i * vocab, ref.data() + i * vocab, vocab), tol)
          << var.name << " position " << i;
  }
  // 2. Sequence B: chunked prefill (7 + 7) mixed in one batch with a re-run of
  //    A's last token as a decode; then decodes of B one token at a time.
  {
    ForwardBatch b;
    b.page_size = ro.page_size;
    add_seq(b, tokens, 0, 7, pages_b, false);
    std::vector<float> logits;
    ASSERT_TRUE((*runner)->forward(b, &logits).ok());
    EXPECT_LT(relative_max_error(logits.data(), ref.data() + 6 * vocab, vocab), tol);
    ForwardBatch b2;
    b2.page_size = ro.page_size;
    add_seq(b2, tokens, 7, 14, pages_b, false);
    add_seq(b2, tokens, n - 1, n, pages_a, false);  // rewrites A's last slot with the same K/V
    ASSERT_TRUE((*runner)->forward(b2, &logits).ok());
    ASSERT_EQ(logits.size(), 2u * vocab);
    EXPECT_LT(relative_max_error(logits.data(), ref.data() + 13 * vocab, vocab), tol) << var.name << " chunk";
    EXPECT_LT(relative_max_error(logits.data() + vocab, ref.data() + (n - 1) * vocab, vocab), tol)
        << var.name << " decode in mixed batch";
    for (int p = 14; p < n; ++p) {
      ForwardBatch d;
      d.page_size = ro.page_size;
      add_seq(d, tokens, p, p + 1, pages_b, false);
      ASSERT_TRUE((*runner)->forward(d, &logits).ok());
      EXPECT_LT(relative_max_error(logits.data(), ref.data() + p * vocab, vocab), tol) << var.name << " decode " << p;
    }
  }
  // 3. Copy B's pages to fresh ids and decode the last token from the copies.
  {
    std::vector<int32_t> pages_c(pages.begin() + 16, pages.begin() + 24);
    std::vector<std::pair<int32_t, int32_t>> moves;
    for (int i = 0; i < 6; ++i) moves.push_back({pages_b[i], pages_c[i]});
    ASSERT_TRUE((*runner)->copy_pages(moves).ok());
    ForwardBatch d;
    d.page_size = ro.page_size;
    add_seq(d, tokens, n - 1, n, pages_c, false);
    std::vector<float> logits;
    ASSERT_TRUE((*runner)->forward(d, &logits).ok());
    EXPECT_LT(relative_max_error(logits.data(), ref.data() + (n - 1) * vocab, vocab), tol) << var.name << " copied";
  }
  EXPECT_EQ((*runner)->num_forward_calls(), 3 + (n - 14) + 1);
}

INSTANTIATE_TEST_SUITE_P(Variants, ForwardTest,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(variants().size())),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& i) {
                           return std::string(variants()[std::get<0>(i.param)].name) +
                                  (std::get<1>(i.param) ? "_blas" : "_streaming");
                         });

// A sequence's logits are bitwise the same alone and batched with a long
// prefill of another sequence (the default backend is batch invariant).
TEST(Forward, BatchInvariant) {
  // f16 and bf16 dense weights, and both int4 formats: every multi-row kernel.
  const std::pair<const char*, DType> cases[] = {
      {"none", DType::kBF16}, {"none", DType::kF16}, {"awq", DType::kBF16}, {"gptq", DType::kBF16}};
  for (const auto& [quant, dtype] : cases) {
    TempDir dir("invariant");
    SynthOptions o;
    o.quant = quant;
    o.desc_act = true;
    o.dtype = dtype;
    ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), o).ok());
    ModelRunnerOptions ro;
    ro.page_size = 4;
    ro.num_pages = 32;
    auto alone = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
    auto mixed = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
    ASSERT_TRUE(alone.ok() && mixed.ok());
    const auto a = random_tokens(9, 256, 5), b = random_tokens(40, 256, 6);
    const std::vector<int32_t> pages_a = {0, 1, 2}, pages_b = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    ForwardBatch solo;
    solo.page_size = 4;
    add_seq(solo, a, 0, 9, pages_a, true);
    std::vector<float> l1, l2;
    ASSERT_TRUE((*alone)->forward(solo, &l1).ok());
    ForwardBatch both;
    both.page_size = 4;
    add_seq(both, b, 0, 40, pages_b, false);
    add_seq(both, a, 0, 9, pages_a, true);
    ASSERT_TRUE((*mixed)->forward(both, &l2).ok());
    ASSERT_EQ(l2.size(), l1.size() + 256);
    EXPECT_TRUE(std::equal(l1.begin(), l1.end(), l2.begin() + 256)) << quant << " " << dtype_name(dtype);
  }
}

// The step-priority hint (Backend::set_step_priority) is a no-op on the CPU:
// a prefill and the decodes after it, the hint flipped before each, give the
// logits of a runner that never got it, bit for bit.
TEST(Forward, StepPriorityHintChangesNothingOnTheCpu) {
  TempDir dir("priority");
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), SynthOptions{}).ok());
  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 8;
  auto plain = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  auto hinted = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(plain.ok() && hinted.ok());
  const auto tokens = random_tokens(12, 256, 7);
  const std::vector<int32_t> pages = {2, 0, 1};
  int begin = 0;
  for (int end : {8, 9, 10, 11, 12}) {
    ForwardBatch b;
    b.page_size = 4;
    add_seq(b, tokens, begin, end, pages, false);
    (*hinted)->set_step_priority(end % 2 == 0);
    std::vector<float> want, got;
    ASSERT_TRUE((*plain)->forward(b, &want).ok());
    ASSERT_TRUE((*hinted)->forward(b, &got).ok());
    ASSERT_EQ(got.size(), 256u);
    EXPECT_EQ(got, want) << "tokens " << begin << ".." << end;
    begin = end;
  }
}

// Pages wholly outside a sliding window may be freed (-1) and are never read.
TEST(Forward, SlidingWindowSkipsFreedPages) {
  TempDir dir("window");
  SynthOptions o;
  o.architecture = "MistralForCausalLM";
  o.sliding_window = 5;
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), o).ok());
  auto cfg = ModelConfig::load(dir.path());
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->uniform_sliding_window(), 5);
  auto host = load_weights_host(*cfg, dir.path());
  ASSERT_TRUE(host.ok());
  const auto tokens = random_tokens(20, cfg->vocab_size, 11);
  const auto ref = reference_logits(*cfg, *host, tokens);
  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 8;
  auto runner = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(runner.ok());
  std::vector<int32_t> pages = {3, 1, 4, 0, 5};
  ForwardBatch b;
  b.page_size = 4;
  add_seq(b, tokens, 0, 19, pages, false);
  std::vector<float> logits;
  ASSERT_TRUE((*runner)->forward(b, &logits).ok());
  // Token 19 sees 15..19: pages 0..2 (tokens 0..11) can go.
  ForwardBatch d;
  d.page_size = 4;
  std::vector<int32_t> freed = {-1, -1, -1, 0, 5};
  add_seq(d, tokens, 19, 20, freed, false);
  ASSERT_TRUE((*runner)->forward(d, &logits).ok());
  EXPECT_LT(relative_max_error(logits.data(), ref.data() + 19 * cfg->vocab_size, cfg->vocab_size), 2e-5);
}

// A default synthetic checkpoint in `dir`, and runner options of 16 pages of
// 4 tokens for it (the kept-logits and shared-pool tests below).
Status write_small_paged(const TempDir& dir, ModelRunnerOptions* ro) {
  ro->page_size = 4;
  ro->num_pages = 16;
  return write_synthetic_checkpoint(dir.path(), SynthOptions());
}

// On the shared KV pool (serve --gpu-budget) every forward path, the kept-logits
// one the engine takes on CUDA included, writes and reads the sequence's pages
// in its own chunks: the bytes of the chunks it does not hold stay as they
// were, and the draw is the plain runner's greedy token.
TEST(Forward, SharedKvKeptLogitsStayInTheirChunks) {
  TempDir dir("shared_keep");
  ModelRunnerOptions ro;
  ASSERT_TRUE(write_small_paged(dir, &ro).ok());
  auto plain = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(plain.ok());
  const ModelConfig& c = (*plain)->config();
  std::shared_ptr<Backend> backend = make_cpu_backend(2);
  const int64_t layer_page =
      int64_t{ro.page_size} * c.num_kv_heads * c.head_dim * static_cast<int64_t>(dtype_size(backend->activation_dtype()));
  const int64_t chunk_bytes = 2 * (2 * c.num_layers * layer_page);  // 2 pages a chunk
  constexpr int kChunks = 4;
  auto mem = backend->allocate(kChunks * chunk_bytes);
  ASSERT_TRUE(mem.ok());
  const std::vector<unsigned char> pattern(kChunks * chunk_bytes, 0x5A);
  backend->copy_host_to_device(mem->data(), pattern.data(), pattern.size());
  ModelRunnerOptions so = ro;
  so.shared_kv = {mem->data(), kChunks, chunk_bytes};
  auto shared = LocalModelRunner::create(backend, dir.path(), so);
  ASSERT_TRUE(shared.ok());
  ASSERT_EQ((*shared)->num_pages(), 2 * kChunks);

  const auto tokens = random_tokens(7, c.vocab_size, 9);
  ForwardBatch batch;
  batch.page_size = 4;
  add_seq(batch, tokens, 0, 7, {4, 5}, false);  // both pages in chunk 2
  std::vector<float> logits;
  ASSERT_TRUE((*plain)->forward(batch, &logits).ok());
  ASSERT_TRUE((*shared)->forward_keep(batch).ok());
  SampleBatch sb;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingContext ctx;
  ctx.prompt_tokens = tokens;
  add_sample_row(greedy, ctx, 0, &sb);
  std::vector<int32_t> got;
  ASSERT_TRUE((*shared)->sample(&sb, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::max_element(logits.begin(), logits.end()) - logits.begin());

  std::vector<unsigned char> after(pattern.size());
  backend->copy_device_to_host(after.data(), mem->data(), after.size());
  for (int chunk = 0; chunk < kChunks; ++chunk) {
    if (chunk == 2) continue;
    const auto b = after.begin() + chunk * chunk_bytes;
    EXPECT_TRUE(std::all_of(b, b + chunk_bytes, [](unsigned char x) { return x == 0x5A; }))
        << "chunk " << chunk << " was written";
  }
}

// Overlapped steps: the decode after a sample_async() takes the drawn id on
// the backend (sampled_prefix) before the host has it, and continues exactly
// as a forward given the id by the host.
TEST(Forward, SampledPrefixTakesTheDrawsOnTheBackend) {
  TempDir dir("prefix");
  ModelRunnerOptions ro;
  ASSERT_TRUE(write_small_paged(dir, &ro).ok());
  auto ahead = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  auto plain = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(ahead.ok() && plain.ok());
  const int vocab = (*ahead)->vocab_size();
  auto tokens = random_tokens(6, vocab, 11);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  auto draw = [&](LocalModelRunner& r, bool async, std::vector<int32_t>* ids) {
    SampleBatch sb;
    SamplingContext ctx;
    ctx.prompt_tokens = tokens;
    add_sample_row(greedy, ctx, 0, &sb);
    return async ? r.sample_async(&sb) : r.sample(&sb, ids);
  };
  ForwardBatch prefill;
  prefill.page_size = 4;
  add_seq(prefill, tokens, 0, 6, {0, 1}, false);
  ASSERT_TRUE((*ahead)->forward_keep(prefill).ok());
  ASSERT_TRUE(draw(**ahead, true, nullptr).ok());
  // The next step, queued before the draw is read: its token is a placeholder.
  ForwardBatch decode;
  decode.page_size = 4;
  tokens.push_back(0);
  add_seq(decode, tokens, 6, 7, {0, 1}, false);
  decode.sampled_prefix = 1;
  ASSERT_TRUE((*ahead)->forward_keep(decode).ok());
  std::vector<int32_t> first, second;
  ASSERT_TRUE((*ahead)->wait_sample(&first).ok());
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(draw(**ahead, false, &second).ok());

  // The same two steps with the id known on the host.
  std::vector<float> logits;
  tokens.pop_back();
  ASSERT_TRUE((*plain)->forward(prefill, &logits).ok());
  EXPECT_EQ(first[0], std::max_element(logits.begin(), logits.end()) - logits.begin());
  tokens.push_back(first[0]);
  ForwardBatch known;
  known.page_size = 4;
  add_seq(known, tokens, 6, 7, {0, 1}, false);
  ASSERT_TRUE((*plain)->forward(known, &logits).ok());
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0], std::max_element(logits.begin(), logits.end()) - logits.begin());

  // A prefix without draws since the last forward behind it is refused.
  decode.sampled_prefix = 0;
  ASSERT_TRUE((*ahead)->forward_keep(decode).ok());
  decode.sampled_prefix = 1;
  EXPECT_EQ((*ahead)->forward_keep(decode).code(), StatusCode::kInvalidArgument);
}

// The device-logits path (forward_keep + sample, what the engine uses on CUDA)
// draws what the host sampler draws from forward()'s logits.
TEST(Forward, KeptLogitsSampleLikeTheHost) {
  TempDir dir("keep");
  ModelRunnerOptions ro;
  ASSERT_TRUE(write_small_paged(dir, &ro).ok());
  auto runner = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(runner.ok());
  const int vocab = (*runner)->vocab_size();
  const auto a = random_tokens(7, vocab, 3), b = random_tokens(12, vocab, 4);
  ForwardBatch batch;
  batch.page_size = 4;
  add_seq(batch, a, 0, 7, {0, 1}, false);
  add_seq(batch, b, 0, 12, {2, 3, 4}, false);
  std::vector<float> logits;
  ASSERT_TRUE((*runner)->forward(batch, &logits).ok());
  ASSERT_TRUE((*runner)->forward_keep(batch).ok());
  SampleBatch sb;
  std::vector<int32_t> want;
  SamplerScratch scratch;
  for (int i = 0; i < 12; ++i) {
    SamplingParams p;
    p.temperature = i % 4 == 0 ? 0.0f : 0.8f;
    p.top_k = i % 3 == 0 ? 20 : -1;
    p.top_p = i % 2 ? 0.9f : 1.0f;
    p.repetition_penalty = i % 5 == 1 ? 1.2f : 1.0f;
    SamplingContext ctx;
    ctx.prompt_tokens = i % 2 ? std::span<const int32_t>(a) : std::span<const int32_t>(b);
    ctx.seed = 50 + i;
    ctx.output_index = i;
    const int row = i % 2;
    add_sample_row(p, ctx, row, &sb);
    want.push_back(sample_token(p, ctx, std::span<const float>(logits.data() + row * vocab, vocab), &scratch).token_id);
  }
  std::vector<int32_t> got;
  ASSERT_TRUE((*runner)->sample(&sb, &got).ok());
  EXPECT_EQ(got, want);
  sb.rows[0].logits_row = 2;  // the forward had two logits rows
  EXPECT_EQ((*runner)->sample(&sb, &got).code(), StatusCode::kInvalidArgument);
}

TEST(Forward, RejectsInconsistentBatch) {
  TempDir dir("badbatch");
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), SynthOptions()).ok());
  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 4;
  auto runner = LocalModelRunner::create(make_cpu_backend(1), dir.path(), ro);
  ASSERT_TRUE(runner.ok());
  ForwardBatch b;
  b.page_size = 4;
  const std::vector<int32_t> tokens = {1, 2, 999};
  add_seq(b, tokens, 0, 3, {0}, false);
  std::vector<float> logits;
  Status s = (*runner)->forward(b, &logits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token_ids[2] = 999"), std::string::npos) << s.message();
  ForwardBatch b2;
  b2.page_size = 4;
  add_seq(b2, {1, 2, 3, 4, 5}, 0, 5, {0, 9}, false);
  s = (*runner)->forward(b2, &logits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  EXPECT_EQ((*runner)->num_forward_calls(), 0);
}

// One sequence through the engine (generate_single, what `tandem generate` runs).
TEST(Forward, GreedyLoopIsDeterministicAndStopsAtEos) {
  TempDir dir("loop");
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), SynthOptions()).ok());
  auto cfg = ModelConfig::load(dir.path());
  ASSERT_TRUE(cfg.ok());
  auto host = load_weights_host(*cfg, dir.path());
  ASSERT_TRUE(host.ok());
  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 8;
  auto runner = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(runner.ok());
  std::vector<int32_t> prompt = {5, 6, 7};
  SamplingParams so;
  so.temperature = 0.0f;
  so.max_tokens = 8;
  auto r = generate_single(**runner, prompt, so);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->output_ids.size(), 8u);
  // Greedy ids equal the reference's argmax at each step.
  std::vector<int32_t> seq = prompt;
  for (int i = 0; i < 8; ++i) {
    const auto ref = reference_logits(*cfg, *host, seq);
    const float* last = ref.data() + (seq.size() - 1) * cfg->vocab_size;
    const int32_t best = static_cast<int32_t>(std::max_element(last, last + cfg->vocab_size) - last);
    EXPECT_EQ(r->output_ids[i], best) << "step " << i;
    seq.push_back(r->output_ids[i]);
  }
  // Stop at the first eos (the third greedy token stands in as eos).
  auto runner2 = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  ASSERT_TRUE(runner2.ok());
  SingleGenerateOptions eos;
  eos.eos_token_ids = {r->output_ids[2]};
  auto r2 = generate_single(**runner2, prompt, so, eos);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->finish, FinishReason::kStop);
  EXPECT_LE(r2->output_ids.size(), 3u);
  EXPECT_EQ(r2->output_ids.back(), r->output_ids[2]);
  // Seeded sampling repeats itself.
  so.temperature = 1.0f;
  so.top_k = 20;
  so.top_p = 0.9f;
  so.seed = 42;
  auto runner3 = LocalModelRunner::create(make_cpu_backend(2), dir.path(), ro);
  auto runner4 = LocalModelRunner::create(make_cpu_backend(1), dir.path(), ro);
  ASSERT_TRUE(runner3.ok() && runner4.ok());
  auto s1 = generate_single(**runner3, prompt, so);
  auto s2 = generate_single(**runner4, prompt, so);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(s1->output_ids, s2->output_ids);
}

}  // namespace
}  // namespace tandem
