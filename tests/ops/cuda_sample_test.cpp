// Backend::sample on CUDA vs the CPU reference (the sampler of src/sampling on
// host copies): greedy with penalties and bans (exact ids), top-k / top-p /
// min-p / temperature draws on known and on tie-heavy distributions (exact ids
// for every seed, and every draw inside the expected keep set), seeded draws
// reproducible and independent of the batch's other rows, shared logits rows.
#include <algorithm>
#include <map>
#include <set>

#include "ops/op_test_util.h"
#include "sampling/backend_sample.h"

namespace tandem::optest {
namespace {

class CudaSample : public OpTest {
 protected:
  // Draws `batch` on backend b over host logits [L, V]; returns the ids.
  std::vector<int32_t> draw(Backend& b, const std::vector<float>& logits, int L, int V, SampleBatch batch) {
    auto ld = put(b, logits, DType::kF32, {L, V});
    auto ids = b.allocate_tensor(DType::kI32, {static_cast<int64_t>(std::max<size_t>(batch.rows.size(), 1))});
    EXPECT_TRUE(ids.ok());
    std::vector<int32_t> poison(batch.rows.size(), -7);
    if (!poison.empty()) b.copy_host_to_device(ids->view.data, poison.data(), poison.size() * 4);
    batch.logits = ld.view;
    batch.out_ids = ids->view.rows(0, static_cast<int64_t>(batch.rows.size()));
    b.sample(batch);
    b.synchronize();
    std::vector<int32_t> out(batch.rows.size());
    if (!out.empty()) b.copy_device_to_host(out.data(), ids->view.data, out.size() * 4);
    // The logits are not modified.
    EXPECT_EQ(get(b, ld.view), logits);
    return out;
  }

  struct Req {
    SamplingParams p;
    std::vector<int32_t> prompt, output, banned;
    uint64_t seed = 0;
    int choice = 0;
  };
  static void add(const Req& r, int row, SampleBatch* b) {
    SamplingContext ctx;
    ctx.prompt_tokens = r.prompt;
    ctx.output_tokens = r.output;
    ctx.banned_tokens = r.banned;
    ctx.seed = r.seed;
    ctx.choice_index = r.choice;
    add_sample_row(r.p, ctx, row, b);
  }

  std::vector<int32_t> random_ids(int n, int V) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = rand_int(0, V - 1);
    return v;
  }

  // CPU and CUDA give the same ids for these draws (one per row of `rows`).
  void expect_same(const std::vector<float>& logits, int L, int V, const std::vector<std::pair<Req, int>>& rows,
                   const std::string& what) {
    SampleBatch b;
    for (const auto& [r, row] : rows) add(r, row, &b);
    const auto ref = draw(*cpu_, logits, L, V, b);
    const auto got = draw(*gpu_, logits, L, V, b);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], ref[i]) << what << " draw " << i;
  }
};

TEST_F(CudaSample, GreedyWithPenaltiesExact) {
  for (int V : {7, 1000, 32000, 151936}) {
    const int L = 5;
    auto logits = random(int64_t{L} * V, -8, 8);
    std::vector<std::pair<Req, int>> rows;
    for (int i = 0; i < 12; ++i) {
      Req r;
      r.p.temperature = i % 3 == 0 ? 0.0f : 1e-6f;
      if (i % 2) r.p.repetition_penalty = 1.3f;
      if (i % 4 == 1) r.p.presence_penalty = 0.7f, r.p.frequency_penalty = 0.3f;
      r.prompt = random_ids(20, V);
      r.output = random_ids(10, V);
      if (i % 5 == 2) r.banned = random_ids(3, V);
      rows.push_back({r, i % L});
    }
    // The argmax banned: the next best must win; and everything banned: token 0.
    {
      Req r;
      r.p.temperature = 0;
      const int best = static_cast<int>(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
      r.banned = {best};
      rows.push_back({r, 0});
      Req all;
      all.p.temperature = 0.8f;
      for (int i = 0; i < std::min(V, 7); ++i) all.banned.push_back(i);
      if (V == 7) rows.push_back({all, 0});
    }
    expect_same(logits, L, V, rows, "greedy V=" + std::to_string(V));
  }
}

// Known distributions: every draw lands in the keep set, and equals the CPU's.
TEST_F(CudaSample, TruncationMasksExact) {
  const int V = 64;
  // logits = log of probabilities 0.4, 0.3, 0.15, 0.1, 0.05, then tiny ones, at shuffled ids.
  std::vector<int32_t> perm(V);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng_);
  const double probs[5] = {0.4, 0.3, 0.15, 0.1, 0.05};
  std::vector<float> logits(V);
  for (int i = 0; i < V; ++i) logits[perm[i]] = i < 5 ? std::log(probs[i]) : std::log(1e-6) - 0.01f * i;
  struct Cfg { int top_k; float top_p, min_p; int expect; };  // expect = size of the keep set (top ids)
  const Cfg cfgs[] = {{1, 1, 0, 1}, {2, 1, 0, 2}, {3, 1, 0, 3}, {0, 0.65f, 0, 2}, {0, 0.72f, 0, 3},
                      {0, 0.35f, 0, 1}, {0, 0.45f, 0, 2}, {0, 1, 0.3f, 3}, {0, 1, 0.2f, 4}, {4, 0.9f, 0, 4}, {3, 0.9f, 0.5f, 2},
                      {0, 0.88f, 0.3f, 3}};
  for (const Cfg& c : cfgs) {
    std::vector<std::pair<Req, int>> rows;
    for (int k = 0; k < 200; ++k) {
      Req r;
      r.p.temperature = 1.0f;
      r.p.top_k = c.top_k;
      r.p.top_p = c.top_p;
      r.p.min_p = c.min_p;
      r.seed = 1234 + k % 7;
      r.output.assign(k, 0);  // the draw's counter = k (no penalties set)
      rows.push_back({r, 0});
    }
    SampleBatch b;
    for (const auto& [r, row] : rows) add(r, row, &b);
    const auto got = draw(*gpu_, logits, 1, V, b);
    const auto ref = draw(*cpu_, logits, 1, V, b);
    const std::set<int32_t> keep(perm.begin(), perm.begin() + c.expect);
    std::map<int32_t, int> seen;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(keep.count(got[i])) << "top_k " << c.top_k << " top_p " << c.top_p << " min_p " << c.min_p
                                      << ": drew " << got[i];
      EXPECT_EQ(got[i], ref[i]) << "draw " << i;
      ++seen[got[i]];
    }
    EXPECT_EQ(static_cast<int>(seen.size()), c.expect) << "every kept token is drawn sometimes";
  }
}

// Random settings on random and on tie-heavy rows (logits on a coarse grid, so
// top-k and top-p cut inside groups of equal logits: ties go by ascending id).
TEST_F(CudaSample, RandomSettingsMatchCpu) {
  for (int V : {100, 32000, 152064}) {
    for (bool ties : {false, true}) {
      const int L = 3;
      auto logits = random(int64_t{L} * V, -6, 6);
      if (ties) {
        for (auto& x : logits) x = std::round(x * 2) / 2;
      }
      std::vector<std::pair<Req, int>> rows;
      const int num_rows = V == 100 ? 150 : 40;  // 150: three launches of at most 64 rows
      for (int i = 0; i < num_rows; ++i) {
        Req r;
        r.p.temperature = std::vector<float>{0.3f, 0.7f, 1.0f, 1.5f}[rand_int(0, 3)];
        r.p.top_k = rand_int(0, 2) ? 0 : rand_int(1, 200);
        r.p.top_p = rand_int(0, 1) ? 1.0f : std::vector<float>{0.5f, 0.8f, 0.95f}[rand_int(0, 2)];
        r.p.min_p = rand_int(0, 2) ? 0.0f : 0.05f;
        if (rand_int(0, 2) == 0) r.p.repetition_penalty = 1.2f;
        if (rand_int(0, 2) == 0) r.p.frequency_penalty = 0.5f, r.p.presence_penalty = -0.2f;
        r.prompt = random_ids(rand_int(0, 50), V);
        r.output = random_ids(rand_int(0, 30), V);
        if (rand_int(0, 3) == 0) r.banned = random_ids(2, V);
        r.seed = static_cast<uint64_t>(rand_int(0, 1 << 30));
        r.choice = rand_int(0, 3);
        rows.push_back({r, rand_int(0, L - 1)});
      }
      expect_same(logits, L, V, rows, "V=" + std::to_string(V) + (ties ? " ties" : ""));
    }
  }
}

// A draw's id depends only on its row and key: alone, at another position in a
// larger batch, and again, it is the same.
TEST_F(CudaSample, SeededDrawsIndependentOfBatch) {
  const int V = 32000, L = 16;
  auto logits = random(int64_t{L} * V, -3, 3);
  std::vector<std::pair<Req, int>> rows;
  for (int i = 0; i < 16; ++i) {
    Req r;
    r.p.temperature = 1.0f;
    r.p.top_p = i % 2 ? 0.9f : 1.0f;
    r.p.top_k = i % 3 ? 0 : 50;
    r.seed = 1000 + i;
    r.output = random_ids(i, V);
    rows.push_back({r, i});
  }
  SampleBatch all;
  for (const auto& [r, row] : rows) add(r, row, &all);
  const auto together = draw(*gpu_, logits, L, V, all);
  EXPECT_EQ(draw(*gpu_, logits, L, V, all), together) << "reproducible";
  for (int i = 0; i < 16; ++i) {
    SampleBatch alone;
    add(rows[i].first, rows[i].second, &alone);
    EXPECT_EQ(draw(*gpu_, logits, L, V, alone)[0], together[i]) << "row " << i << " alone";
  }
  SampleBatch reversed;
  for (int i = 15; i >= 0; --i) add(rows[i].first, rows[i].second, &reversed);
  const auto rev = draw(*gpu_, logits, L, V, reversed);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(rev[15 - i], together[i]) << "row " << i << " reversed";
  // Different seeds do draw differently (the key is used).
  std::set<int32_t> distinct;
  for (int s = 0; s < 16; ++s) {
    Req r = rows[0].first;
    r.seed = 5000 + s;
    SampleBatch one;
    add(r, 0, &one);
    distinct.insert(draw(*gpu_, logits, L, V, one)[0]);
  }
  EXPECT_GT(distinct.size(), 4u);
}

}  // namespace
}  // namespace tandem::optest
