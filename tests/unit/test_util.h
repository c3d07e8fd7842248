// Helpers shared by the unit tests: temp folders and a naive reference forward
// pass (plain loops in double, no cache, no paging) to check the real one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include "model/quant.h"

#include "model/config.h"
#include "model/weights.h"

namespace tandem::testing {

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};



inline TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  path_ = (std::filesystem::temp_directory_path() /
           ("tandem_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(rd())))
              .string();
  std::filesystem::create_directories(path_);
}

inline TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace detail {

using Mat = std::vector<double>;  // row-major [N, K]

inline Mat weight_of(const LinearWeight& w) {
  std::vector<float> f = dequantize_reference(w);
  return Mat(f.begin(), f.end());
}

inline std::vector<double> vec_of(const TensorView& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = load_as_f32(t.data, t.dtype, i);
  return v;
}

inline std::vector<double> matvec(const Mat& w, const std::vector<double>& x, int64_t n, int64_t k,
                           const TensorView& bias) {
  std::vector<double> y(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = bias.empty() ? 0.0 : load_as_f32(bias.data, bias.dtype, i);
    for (int64_t j = 0; j < k; ++j) s += w[i * k + j] * x[j];
    y[i] = s;
  }
  return y;
}

inline std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = w[i] * x[i] * r;
  return y;
}

inline void rope(std::vector<double>& v, int heads, int d, int pos, const ModelConfig& c) {
  const int half = d / 2;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < half; ++i) {
      double inv = 1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / d);
      if (c.rope_scaling == RopeScalingType::kLinear) inv /= c.rope_scaling_factor;
      const double a = pos * inv;
      double& x1 = v[h * d + i];
      double& x2 = v[h * d + i + half];
      const double n1 = x1 * std::cos(a) - x2 * std::sin(a);
      const double n2 = x2 * std::cos(a) + x1 * std::sin(a);
      x1 = n1;
      x2 = n2;
    }
}

}  // namespace detail

inline std::vector<float> reference_logits(const ModelConfig& c, const ModelWeightsHost& w,
                                    const std::vector<int32_t>& tokens) {
  const int t = static_cast<int>(tokens.size()), h = c.hidden_size, d = c.head_dim;
  const int hq = c.num_heads, hk = c.num_kv_heads, inter = c.intermediate_size;
  std::vector<std::vector<double>> x(t, std::vector<double>(h));
  const std::vector<double> emb = detail::vec_of(w.embed);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < h; ++j) x[i][j] = emb[static_cast<int64_t>(tokens[i]) * h + j];
  for (int li = 0; li < c.num_layers; ++li) {
    const LayerWeightsHost& l = w.layers[li];
    const detail::Mat wq = detail::weight_of(l.q), wk = detail::weight_of(l.k), wv = detail::weight_of(l.v), wo = detail::weight_of(l.o);
    const detail::Mat wg = detail::weight_of(l.gate), wu = detail::weight_of(l.up), wd = detail::weight_of(l.down);
    const std::vector<double> n1 = detail::vec_of(l.input_norm), n2 = detail::vec_of(l.post_norm);
    std::vector<std::vector<double>> q(t), k(t), v(t);
    for (int i = 0; i < t; ++i) {
      const auto hn = detail::rmsnorm(x[i], n1, c.rms_norm_eps);
      q[i] = detail::matvec(wq, hn, c.q_size(), h, l.q.bias);
      k[i] = detail::matvec(wk, hn, c.kv_size(), h, l.k.bias);
      v[i] = detail::matvec(wv, hn, c.kv_size(), h, l.v.bias);
      detail::rope(q[i], hq, d, i, c);
      detail::rope(k[i], hk, d, i, c);
    }
    const int window = c.layer_sliding_window[li];
    for (int i = 0; i < t; ++i) {
      std::vector<double> attn(c.q_size(), 0.0);
      const int lo = window > 0 ? std::max(0, i - window + 1) : 0;
      for (int hh = 0; hh < hq; ++hh) {
        const int kvh = hh / (hq / hk);
        std::vector<double> s;
        double mx = -1e300;
        for (int j = lo; j <= i; ++j) {
          double dot = 0;
          for (int e = 0; e < d; ++e) dot += q[i][hh * d + e] * k[j][kvh * d + e];
          s.push_back(dot / std::sqrt(static_cast<double>(d)));
          mx = std::max(mx, s.back());
        }
        double sum = 0;
        for (double& e : s) sum += e = std::exp(e - mx);
        for (int j = lo; j <= i; ++j)
          for (int e = 0; e < d; ++e) attn[hh * d + e] += s[j - lo] / sum * v[j][kvh * d + e];
      }
      const auto o = detail::matvec(wo, attn, h, c.q_size(), l.o.bias);
      for (int j = 0; j < h; ++j) x[i][j] += o[j];
      const auto hn = detail::rmsnorm(x[i], n2, c.rms_norm_eps);
      const auto g = detail::matvec(wg, hn, inter, h, TensorView());
      const auto u = detail::matvec(wu, hn, inter, h, TensorView());
      std::vector<double> a(inter);
      for (int j = 0; j < inter; ++j) a[j] = g[j] / (1.0 + std::exp(-g[j])) * u[j];
      const auto dn = detail::matvec(wd, a, h, inter, TensorView());
      for (int j = 0; j < h; ++j) x[i][j] += dn[j];
    }
  }
  const std::vector<double> fn = detail::vec_of(w.final_norm);
  const detail::Mat head = detail::weight_of(w.lm_head);
  std::vector<float> out;
  for (int i = 0; i < t; ++i) {
    const auto hn = detail::rmsnorm(x[i], fn, c.rms_norm_eps);
    const auto lg = detail::matvec(head, hn, c.vocab_size, h, TensorView());
    out.insert(out.end(), lg.begin(), lg.end());
  }
  return out;
}

inline double relative_max_error(const float* a, const float* b, int n) {
  float lo = b[0], hi = b[0];
  double err = 0;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, b[i]);
    hi = std::max(hi, b[i]);
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return err / std::max(1e-12, static_cast<double>(hi - lo));
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace tandem::testing

namespace tandem::testing {

// Rewrites the JSON header of a safetensors file (data buffer kept as is).
inline void edit_safetensors_header(const std::string& path,
                                    const std::function<void(nlohmann::json&)>& edit) {
  std::string bytes = read_text(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  edit(h);
  std::string hs = h.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
  write_text(path, out + hs + bytes.substr(8 + n));
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command, capturing stdout and stderr.
inline CommandResult run_command(const std::string& cmd) {
  TempDir tmp("cmd");
  const std::string full = cmd + " >" + tmp.file("out") + " 2>" + tmp.file("err");
  const int rc = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = read_text(tmp.file("out"));
  r.err = read_text(tmp.file("err"));
  return r;
}

}  // namespace tandem::testing
