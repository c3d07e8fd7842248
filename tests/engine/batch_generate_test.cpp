#include "engine/batch_generate.h"

#include <gtest/gtest.h>

#include "engine/engine_thread.h"
#include "engine_harness.h"

namespace tandem::testing {
namespace {

TEST(BatchGenerate, ResultsComeBackInInputOrder) {
  FakeModelRunner runner(64, 128, 4);
  EngineConfig c;
  c.cache.page_size = 4;
  c.scheduler.max_num_seqs = 8;
  c.scheduler.max_num_batched_tokens = 32;
  auto engine = EngineThread::start(c, &runner, nullptr);
  ASSERT_TRUE(engine.ok());
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 20; ++i) prompts.push_back(std::vector<int32_t>(1 + (i * 7) % 23, i % 64));
  auto res = generate_batch(**engine, prompts, greedy(6));
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> got;
    for (const auto& t : (*res)[i].tokens[0]) got.push_back(t.token_id);
    EXPECT_EQ(got, fake_greedy(prompts[i], 64, 6)) << i;
    EXPECT_EQ((*res)[i].finish[0], FinishReason::kLength);
    EXPECT_EQ((*res)[i].num_prompt_tokens, static_cast<int>(prompts[i].size()));
  }
  // A bad prompt fails the batch, naming it.
  prompts[3] = std::vector<int32_t>(1000, 1);
  auto bad = generate_batch(**engine, prompts, greedy(6));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "prompt 3: prompt has 1000 tokens, more than max_model_len 512");
}

TEST(BatchGenerate, ParsesPromptIdLines) {
  auto ok = parse_prompt_ids("1 2 3\n4,5\t6\r\n7\n\n", "f.txt");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(*ok, (std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5, 6}, {7}}));
  EXPECT_EQ(parse_prompt_ids("1 2\n3 x7\n", "f.txt").status().message(), "f.txt:2: 'x7' is not a token id");
  EXPECT_EQ(parse_prompt_ids("1 -2\n", "f.txt").status().message(), "f.txt:1: '-2' is not a token id");
  EXPECT_EQ(parse_prompt_ids("1\n\n2\n", "f.txt").status().message(),
            "f.txt:2: empty line (one prompt of token ids per line)");
  EXPECT_EQ(parse_prompt_ids("\n \n", "f.txt").status().message(),
            "f.txt: no prompts (one line of token ids per prompt)");
  EXPECT_EQ(parse_prompt_ids("99999999999\n", "f.txt").status().message(),
            "f.txt:1: '99999999999' is not a token id");
}

}  // namespace
}  // namespace tandem::testing
