// The CPU backend: the reference for every other backend. Activations and the
// KV cache are fp32; loops are parallel over all cores; fp32 accumulation.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_linear.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "common/check.h"

namespace tandem {
namespace cpu {
namespace {

void check_f32(const TensorView& t, const char* what) {
  CHECK_MSG(t.dtype == DType::kF32, what << " must be F32 on the CPU backend, got " << dtype_name(t.dtype));
}

class CpuBackend : public Backend {
 public:
  CpuBackend(int num_threads, bool blas_prefill)
      : pool_(num_threads), kern_(select_kernels()), blas_prefill_(blas_prefill) {}

  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }

  StatusOr<DeviceBuffer> allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return resource_exhausted("cpu: cannot allocate " + std::to_string(bytes) + " bytes");
    return DeviceBuffer(this, p, bytes);
  }
  void free_memory(void* data, size_t) override { std::free(data); }
  void copy_host_to_device(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_device_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_device_to_device(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void fill_zero(void* dst, size_t bytes) override { std::memset(dst, 0, bytes); }
  void synchronize() override {}

  StatusOr<std::unique_ptr<PreparedLinear>> prepare_linear(const LinearWeight& w) override {
    ASSIGN_OR_RETURN(auto lin, CpuLinear::create(w, pool_));
    return std::unique_ptr<PreparedLinear>(std::move(lin));
  }

  void embedding(const TensorView& table, const TensorView& ids, const TensorView& out) override {
    check_f32(out, "embedding out");
    const int64_t t = ids.numel(), h = table.dim(1), v = table.dim(0);
    CHECK_EQ(out.numel(), t * h);
    const int32_t* id = ids.as<int32_t>();
    float* o = out.as<float>();
    pool_.parallel_for(t, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        CHECK_MSG(id[i] >= 0 && id[i] < v, "token id " << id[i] << " outside [0, " << v << ")");
        const int64_t base = static_cast<int64_t>(id[i]) * h;
        for (int64_t j = 0; j < h; ++j) o[i * h + j] = load_as_f32(table.data, table.dtype, base + j);
      }
    });
  }

  void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) override {
    norm_rows(x, nullptr, weight, eps, out);
  }

  void add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, float eps,
                    const TensorView& out) override {
    norm_rows(x, &residual, weight, eps, out);
  }

  void linear(const TensorView& x, const PreparedLinear& w, const TensorView& out) override {
    check_f32(x, "linear x");
    check_f32(out, "linear out");
    const auto& lin = static_cast<const CpuLinear&>(w);
    const int64_t m = x.dim(0);
    CHECK_EQ(x.numel(), m * lin.num_in());
    CHECK_EQ(out.numel(), m * lin.num_out());
    lin.forward(x.as<float>(), m, out.as<float>(), pool_, kern_, scratch_, blas_prefill_);
  }

  void rope(const RopeParams& p) override {
    check_f32(p.q, "rope q");
    check_f32(p.k, "rope k");
    const int64_t t = p.q.dim(0), hq = p.q.dim(1), hk = p.k.dim(1), d = p.q.dim(2);
    const int half = p.rotary_dim / 2;
    CHECK(p.rotary_dim <= d && p.inv_freq.numel() == half && p.positions.numel() == t);
    const int32_t* pos = p.positions.as<int32_t>();
    const float* inv = p.inv_freq.as<float>();
    pool_.parallel_for(t, 1, [&](int64_t b, int64_t e) {
      std::vector<float> c(half), s(half);
      for (int64_t i = b; i < e; ++i) {
        for (int j = 0; j < half; ++j) {
          const float angle = static_cast<float>(pos[i]) * inv[j];
          c[j] = std::cos(angle);
          s[j] = std::sin(angle);
        }
        auto rotate = [&](float* v) {
          for (int j = 0; j < half; ++j) {
            const float x1 = v[j], x2 = v[j + half];
            v[j] = x1 * c[j] - x2 * s[j];
            v[j + half] = x2 * c[j] + x1 * s[j];
          }
        };
        for (int64_t h = 0; h < hq; ++h) rotate(p.q.as<float>() + (i * hq + h) * d);
        for (int64_t h = 0; h < hk; ++h) rotate(p.k.as<float>() + (i * hk + h) * d);
      }
    });
  }

  void write_kv(const TensorView& k, const TensorView& v, const TensorView& slot_mapping,
                const KvCacheView& cache) override {
    check_f32(cache.k, "kv cache");
    const int64_t t = k.dim(0);
    const int64_t row = k.row_numel();  // KH * D
    const int64_t num_slots = cache.k.dim(0) * cache.k.dim(1);
    CHECK_EQ(row, cache.k.dim(2) * cache.k.dim(3));
    const int32_t* slots = slot_mapping.as<int32_t>();
    for (int64_t i = 0; i < t; ++i) {
      if (slots[i] < 0) continue;
      CHECK_MSG(slots[i] < num_slots, "slot " << slots[i] << " outside the cache (" << num_slots << " slots)");
      std::memcpy(cache.k.as<float>() + slots[i] * row, k.as<float>() + i * row, row * 4);
      std::memcpy(cache.v.as<float>() + slots[i] * row, v.as<float>() + i * row, row * 4);
    }
  }

  void attention(const AttentionParams& p) override;

  void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) override {
    const int64_t n = gate.numel();
    CHECK(up.numel() == n && out.numel() == n);
    const float* g = gate.as<float>();
    const float* u = up.as<float>();
    float* o = out.as<float>();
    pool_.parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    });
  }

  void swiglu(const TensorView& gate_up, const TensorView& out) override {
    const int64_t rows = out.shape[0], inter = out.row_numel();
    CHECK(gate_up.dtype == DType::kF32 && out.dtype == DType::kF32);
    CHECK_EQ(gate_up.shape[0], rows);
    CHECK_EQ(gate_up.row_numel(), 2 * inter);
    const float* gu = gate_up.as<float>();
    float* o = out.as<float>();
    pool_.parallel_for(rows * inter, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t r = i / inter, j = i % inter;
        const float g = gu[r * 2 * inter + j];
        o[i] = g / (1.0f + std::exp(-g)) * gu[r * 2 * inter + inter + j];
      }
    });
  }

  void split_columns(const TensorView& src, const std::vector<TensorView>& outs) override {
    const int64_t rows = src.shape[0], width = src.row_numel();
    const size_t es = dtype_size(src.dtype);
    int64_t total = 0;
    for (const TensorView& o : outs) {
      CHECK(o.dtype == src.dtype && o.shape[0] == rows);
      total += o.row_numel();
    }
    CHECK_EQ(total, width);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t col = 0;
      for (const TensorView& o : outs) {
        const int64_t n = o.row_numel();
        std::memcpy(static_cast<char*>(o.data) + r * n * es,
                    static_cast<const char*>(src.data) + (r * width + col) * es, n * es);
        col += n;
      }
    }
  }

  void gather_rows(const TensorView& x, const TensorView& rows, const TensorView& out) override {
    const int64_t r = rows.numel(), h = x.row_numel();
    const size_t es = dtype_size(x.dtype);
    for (int64_t i = 0; i < r; ++i) {
      const int32_t src = rows.as<int32_t>()[i];
      CHECK(src >= 0 && src < x.dim(0));
      std::memcpy(static_cast<char*>(out.data) + i * h * es, static_cast<const char*>(x.data) + src * h * es, h * es);
    }
  }

  void convert(const TensorView& src, const TensorView& dst) override {
    const int64_t n = src.numel();
    CHECK_EQ(n, dst.numel());
    if (src.dtype == dst.dtype) {
      std::memcpy(dst.data, src.data, src.nbytes());
      return;
    }
    for (int64_t i = 0; i < n; ++i) store_from_f32(dst.data, dst.dtype, i, load_as_f32(src.data, src.dtype, i));
  }

  void copy_kv_pages(const KvCacheView& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) override {
    const int64_t page_elems = cache.k.row_numel();
    for (const auto& [src, dst] : src_dst) {
      CHECK(src >= 0 && dst >= 0 && src < cache.k.dim(0) && dst < cache.k.dim(0));
      std::memcpy(cache.k.as<float>() + dst * page_elems, cache.k.as<float>() + src * page_elems, page_elems * 4);
      std::memcpy(cache.v.as<float>() + dst * page_elems, cache.v.as<float>() + src * page_elems, page_elems * 4);
    }
  }

 private:
  void norm_rows(const TensorView& x, const TensorView* residual, const TensorView& weight, float eps,
                 const TensorView& out) {
    check_f32(x, "rms_norm x");
    const int64_t h = weight.numel(), t = x.numel() / h;
    CHECK_EQ(x.numel(), t * h);
    std::vector<float> w(h);
    for (int64_t j = 0; j < h; ++j) w[j] = load_as_f32(weight.data, weight.dtype, j);
    pool_.parallel_for(t, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* src = x.as<float>() + i * h;
        if (residual != nullptr) {
          float* r = residual->as<float>() + i * h;
          for (int64_t j = 0; j < h; ++j) r[j] += src[j];
          src = r;
        }
        float ss = 0;
        for (int64_t j = 0; j < h; ++j) ss += src[j] * src[j];
        const float scale = 1.0f / std::sqrt(ss / static_cast<float>(h) + eps);
        float* o = out.as<float>() + i * h;
        for (int64_t j = 0; j < h; ++j) o[j] = w[j] * (src[j] * scale);
      }
    });
  }

  ThreadPool pool_;
  Kernels kern_;
  std::vector<float> scratch_;  // reused by linear(); the backend runs on one thread
  bool blas_prefill_;
};

void CpuBackend::attention(const AttentionParams& p) {
  check_f32(p.q, "attention q");
  const PageTableView& pt = p.pages;
  const int h = p.num_heads, kh = p.num_kv_heads, d = p.head_dim, ps = pt.page_size;
  CHECK(h % kh == 0 && p.cache.k.dim(1) == ps && p.cache.k.dim(2) == kh && p.cache.k.dim(3) == d);
  const int group = h / kh;
  const int64_t num_pages = p.cache.k.dim(0);
  // Token -> sequence, from the CSR query offsets.
  std::vector<int32_t> seq_of(pt.num_tokens);
  for (int s = 0; s < pt.num_seqs; ++s)
    for (int i = pt.query_start[s]; i < pt.query_start[s + 1]; ++i) seq_of[i] = s;
  const float* kc = p.cache.k.as<float>();
  const float* vc = p.cache.v.as<float>();
  pool_.parallel_for(static_cast<int64_t>(pt.num_tokens) * h, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    for (int64_t job = b; job < e; ++job) {
      const int64_t t = job / h;
      const int head = static_cast<int>(job % h), kvh = head / group;
      const int s = seq_of[t];
      const int n_q = pt.query_start[s + 1] - pt.query_start[s];
      const int pos = pt.kv_len[s] - n_q + static_cast<int>(t - pt.query_start[s]);
      const int lo = p.sliding_window > 0 ? std::max(0, pos - p.sliding_window + 1) : 0;
      const int32_t* pages = pt.page_indices + pt.page_indptr[s];
      const float* q = p.q.as<float>() + (t * h + head) * d;
      scores.resize(pos - lo + 1);
      float mx = -std::numeric_limits<float>::infinity();
      for (int j = lo; j <= pos; ++j) {
        const int32_t page = pages[j / ps];
        CHECK_MSG(page >= 0 && page < num_pages, "page " << page << " read at cache index " << j);
        const float* kr = kc + ((static_cast<int64_t>(page) * ps + j % ps) * kh + kvh) * d;
        const float sc = kern_.dot_f32(q, kr, d) * p.scale;
        scores[j - lo] = sc;
        mx = std::max(mx, sc);
      }
      float sum = 0;
      for (float& sc : scores) {
        sc = std::exp(sc - mx);
        sum += sc;
      }
      float* o = p.out.as<float>() + (t * h + head) * d;
      std::fill(o, o + d, 0.0f);
      const float inv = 1.0f / sum;
      for (int j = lo; j <= pos; ++j) {
        const int32_t page = pages[j / ps];
        const float* vr = vc + ((static_cast<int64_t>(page) * ps + j % ps) * kh + kvh) * d;
        kern_.axpy_f32(scores[j - lo] * inv, vr, o, d);
      }
    }
  });
}

}  // namespace
}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(int num_threads, bool blas_prefill) {
  return std::make_unique<cpu::CpuBackend>(num_threads, blas_prefill);
}

}  // namespace tandem
