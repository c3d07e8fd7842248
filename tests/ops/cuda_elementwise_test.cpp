// CUDA vs CPU: embedding, rms_norm, add_rms_norm, rope, silu_mul, gather_rows, convert.
#include "ops/op_test_util.h"

namespace tandem::optest {
namespace {

class CudaElementwise : public OpTest {};

TEST_F(CudaElementwise, Embedding) {
  for (auto [vocab, hidden, tokens] : {std::tuple{37, 64, 1}, {1000, 4096, 7}, {33, 130, 33}, {5, 8, 300}}) {
    auto table = random(int64_t{vocab} * hidden);
    std::vector<int32_t> ids(tokens);
    for (auto& i : ids) i = rand_int(0, vocab - 1);
    auto tc = put(*cpu_, table, DType::kF32, {vocab, hidden});
    auto tg = put(*gpu_, table, act(), {vocab, hidden});
    auto ic = put_i32(*cpu_, ids, {tokens});
    auto ig = put_i32(*gpu_, ids, {tokens});
    auto oc = out(*cpu_, DType::kF32, {tokens, hidden});
    auto og = out(*gpu_, act(), {tokens, hidden});
    cpu_->embedding(tc.view, ic.view, oc.view);
    gpu_->embedding(tg.view, ig.view, og.view);
    EXPECT_EQ(rel_err(get(*gpu_, og.view), get(*cpu_, oc.view)), 0.0) << vocab << "x" << hidden;
    // fp32 table on the GPU (converted while gathering)
    auto tg32 = put(*gpu_, table, DType::kF32, {vocab, hidden});
    auto og2 = out(*gpu_, act(), {tokens, hidden});
    gpu_->embedding(tg32.view, ig.view, og2.view);
    EXPECT_EQ(rel_err(get(*gpu_, og2.view), get(*cpu_, oc.view)), 0.0);
  }
}

TEST_F(CudaElementwise, RmsNormAndResidual) {
  for (auto [rows, hidden] : {std::pair{1, 64}, {3, 4096}, {17, 5120}, {2, 100}, {64, 7168}, {5, 8200}, {1, 14336}, {16, 7168}}) {
    auto x = random(int64_t{rows} * hidden, -3, 3);
    auto res = random(int64_t{rows} * hidden, -3, 3);
    auto w = random(hidden, 0.5, 1.5);
    const float eps = 1e-5f;
    auto xc = put(*cpu_, x, DType::kF32, {rows, hidden});
    auto xg = put(*gpu_, x, act(), {rows, hidden});
    auto wc = put(*cpu_, w, DType::kF32, {hidden});
    auto wg = put(*gpu_, w, act(), {hidden});
    auto oc = out(*cpu_, DType::kF32, {rows, hidden});
    auto og = out(*gpu_, act(), {rows, hidden});
    cpu_->rms_norm(xc.view, wc.view, eps, oc.view);
    gpu_->rms_norm(xg.view, wg.view, eps, og.view);
    EXPECT_LT(rel_err(get(*gpu_, og.view), get(*cpu_, oc.view)), 2e-3) << rows << "x" << hidden;

    auto rc = put(*cpu_, res, DType::kF32, {rows, hidden});
    auto rg = put(*gpu_, res, act(), {rows, hidden});
    // out aliases x, as the model does
    cpu_->add_rms_norm(xc.view, rc.view, wc.view, eps, xc.view);
    gpu_->add_rms_norm(xg.view, rg.view, wg.view, eps, xg.view);
    EXPECT_LT(rel_err(get(*gpu_, rg.view), get(*cpu_, rc.view)), 1e-3) << "residual " << rows << "x" << hidden;
    EXPECT_LT(rel_err(get(*gpu_, xg.view), get(*cpu_, xc.view)), 2e-3) << "fused " << rows << "x" << hidden;
  }
}

TEST_F(CudaElementwise, Rope) {
  struct Case { int tokens, heads, kv_heads, dim, rot; float theta, factor; };
  for (auto c : {Case{1, 32, 8, 128, 128, 1e4f, 1.f}, Case{13, 56, 8, 128, 128, 1e5f, 4.f},
                 Case{7, 8, 8, 64, 64, 1e6f, 1.f}, Case{5, 4, 2, 64, 32, 1e4f, 2.f}}) {
    auto q = random(int64_t{c.tokens} * c.heads * c.dim, -2, 2);
    auto k = random(int64_t{c.tokens} * c.kv_heads * c.dim, -2, 2);
    std::vector<int32_t> pos(c.tokens);
    for (auto& p : pos) p = rand_int(0, 20000);
    std::vector<float> inv(c.rot / 2);
    for (int i = 0; i < c.rot / 2; ++i)
      inv[i] = static_cast<float>(1.0 / std::pow(double{c.theta}, 2.0 * i / c.rot) / c.factor);
    auto run = [&](Backend& b, DType t) {
      auto qd = put(b, q, t, {c.tokens, c.heads, c.dim});
      auto kd = put(b, k, t, {c.tokens, c.kv_heads, c.dim});
      auto pd = put_i32(b, pos, {c.tokens});
      auto fd = put(b, inv, DType::kF32, {c.rot / 2});
      b.rope(rope_params(qd.view, kd.view, pd.view, fd.view, c.rot));
      return std::pair{get(b, qd.view), get(b, kd.view)};
    };
    auto [qc, kc] = run(*cpu_, DType::kF32);
    auto [qg, kg] = run(*gpu_, act());
    EXPECT_LT(rel_err(qg, qc), 2e-3) << c.tokens << " " << c.heads << " " << c.dim;
    EXPECT_LT(rel_err(kg, kc), 2e-3);
  }
}

TEST_F(CudaElementwise, SiluMulGatherConvert) {
  for (auto [rows, inter] : {std::pair{1, 14336}, {9, 101}, {33, 19200}}) {
    auto g = random(int64_t{rows} * inter, -6, 6);
    auto u = random(int64_t{rows} * inter, -2, 2);
    auto gc = put(*cpu_, g, DType::kF32, {rows, inter});
    auto uc = put(*cpu_, u, DType::kF32, {rows, inter});
    auto gg = put(*gpu_, g, act(), {rows, inter});
    auto ug = put(*gpu_, u, act(), {rows, inter});
    auto oc = out(*cpu_, DType::kF32, {rows, inter});
    auto og = out(*gpu_, act(), {rows, inter});
    cpu_->silu_mul(gc.view, uc.view, oc.view);
    gpu_->silu_mul(gg.view, ug.view, og.view);
    auto ref = get(*cpu_, oc.view);
    EXPECT_LT(rel_err(get(*gpu_, og.view), ref), 2e-3) << rows << "x" << inter;

    std::vector<int32_t> idx = {rows - 1, 0, rows / 2, rows - 1};
    auto ic = put_i32(*cpu_, idx, {4});
    auto ig = put_i32(*gpu_, idx, {4});
    auto rc = out(*cpu_, DType::kF32, {4, inter});
    auto rg = out(*gpu_, act(), {4, inter});
    cpu_->gather_rows(oc.view, ic.view, rc.view);
    gpu_->gather_rows(og.view, ig.view, rg.view);
    EXPECT_LT(rel_err(get(*gpu_, rg.view), get(*cpu_, rc.view)), 2e-3);

    auto f32 = out(*gpu_, DType::kF32, {4, inter});
    gpu_->convert(rg.view, f32.view);
    EXPECT_EQ(rel_err(get(*gpu_, f32.view), get(*gpu_, rg.view)), 0.0);
  }
}

// The fused gate/up output: out = silu(gu[:, :I]) * gu[:, I:]; and the q/k/v split.
TEST_F(CudaElementwise, SwigluAndSplitColumns) {
  for (auto [rows, inter] : {std::pair{1, 14336}, {7, 101}, {17, 4096}}) {
    auto gu = random(int64_t{rows} * 2 * inter, -6, 6);
    auto gc = put(*cpu_, gu, DType::kF32, {rows, 2 * inter});
    auto gg = put(*gpu_, gu, act(), {rows, 2 * inter});
    auto oc = out(*cpu_, DType::kF32, {rows, inter});
    auto og = out(*gpu_, act(), {rows, inter});
    cpu_->swiglu(gc.view, oc.view);
    gpu_->swiglu(gg.view, og.view);
    EXPECT_LT(rel_err(get(*gpu_, og.view), get(*cpu_, oc.view)), 2e-3) << rows << "x" << inter;
  }
  // Widths: Mistral q/k/v (4096, 1024, 1024), odd ones (2-byte and 4-byte paths).
  for (auto widths : {std::vector<int>{4096, 1024, 1024}, {7, 5, 3}, {64, 2, 30, 8}, {896, 128, 128}}) {
    for (int rows : {1, 3, 33}) {
      int total = 0;
      for (int w : widths) total += w;
      auto src = random(int64_t{rows} * total);
      auto sc = put(*cpu_, src, DType::kF32, {rows, total});
      auto sg = put(*gpu_, src, act(), {rows, total});
      std::vector<DeviceTensor> oc, og;
      std::vector<TensorView> vc, vg;
      for (int w : widths) {
        oc.push_back(out(*cpu_, DType::kF32, {rows, w}));
        og.push_back(out(*gpu_, act(), {rows, w}));
        vc.push_back(oc.back().view);
        vg.push_back(og.back().view);
      }
      cpu_->split_columns(sc.view, vc);
      gpu_->split_columns(sg.view, vg);
      for (size_t i = 0; i < widths.size(); ++i)
        EXPECT_EQ(rel_err(get(*gpu_, vg[i]), get(*cpu_, vc[i])), 0.0) << "rows " << rows << " part " << i;
    }
  }
}

}  // namespace
}  // namespace tandem::optest
