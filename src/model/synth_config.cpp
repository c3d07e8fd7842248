#include "model/synth_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/random_weights.h"
#include "memory/weights.h"
#include "model/config.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kChunkBytes = 32 << 20;  // one job: generate, then one pwrite

// How a tensor's values are drawn (backend/random_weights.h conventions).
enum class Fill { kUniform, kNibbles, kGroupIndex };

struct TensorPlan {
  memory::TensorSpec spec;
  Fill fill = Fill::kUniform;
  float lo = 0, hi = 0;       // kUniform
  int nib_lo = 0, nib_hi = 15;  // kNibbles
  int64_t k = 0;              // kGroupIndex: rows
  int group_size = 0;         // kGroupIndex
  bool act_order = false;     // kGroupIndex
  uint64_t seed = 0;
  int shard = 0;
  uint64_t offset = 0;        // in the shard's data buffer
};

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// K (in features) of the linear layer a tensor belongs to, or 0.
int64_t linear_in_features(const std::string& name, const ModelConfig& c) {
  static const char* kHidden[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "mlp.gate_proj.",
                                  "mlp.up_proj."};
  for (const char* p : kHidden)
    if (name.find(p) != std::string::npos) return c.hidden_size;
  if (name.find("self_attn.o_proj.") != std::string::npos) return c.q_size();
  if (name.find("mlp.down_proj.") != std::string::npos) return c.intermediate_size;
  return 0;
}

TensorPlan plan_tensor(memory::TensorSpec spec, const ModelConfig& c, uint64_t seed) {
  TensorPlan t;
  t.seed = random_subseed(seed, name_hash(spec.name));
  const std::string& n = spec.name;
  const int64_t k = linear_in_features(n, c);
  const QuantConfig& q = c.quant;
  if (ends_with(n, ".qweight")) {
    t.fill = Fill::kNibbles;
  } else if (ends_with(n, ".qzeros")) {
    // The zero the kernels see is stored + zero_offset; symmetric GPTQ: 8 (v1 files hold 0x77777777).
    const bool sym = q.method == QuantMethod::kGptq && q.sym;
    t.fill = Fill::kNibbles;
    t.nib_lo = (sym ? 8 : kRandomZeroLo) - q.zero_offset();
    t.nib_hi = (sym ? 8 : kRandomZeroHi) - q.zero_offset();
  } else if (ends_with(n, ".scales")) {
    t.lo = random_scale_lo(k);
    t.hi = random_scale_hi(k);
  } else if (ends_with(n, ".g_idx")) {
    t.fill = Fill::kGroupIndex;
    t.k = k;
    t.group_size = static_cast<int>(q.group_size_for(k));
    t.act_order = q.desc_act;
  } else if (n == "model.embed_tokens.weight") {
    t.lo = -1.0f, t.hi = 1.0f;
  } else if (ends_with(n, "norm.weight")) {
    t.lo = 0.8f, t.hi = 1.2f;
  } else {
    const float a = random_weight_bound(k > 0 ? k : c.hidden_size);  // linear weight, bias, lm_head
    t.lo = -a, t.hi = a;
  }
  t.spec = std::move(spec);
  return t;
}

// Fills dst with elements [begin, begin + count) of the tensor.
void generate(const TensorPlan& t, int64_t begin, int64_t count, uint8_t* dst) {
  switch (t.fill) {
    case Fill::kUniform:
      for (int64_t i = 0; i < count; ++i)
        store_from_f32(dst, t.spec.dtype, i, t.lo + (t.hi - t.lo) * random_unit(t.seed, begin + i));
      return;
    case Fill::kNibbles: {
      uint32_t* w = reinterpret_cast<uint32_t*>(dst);
      for (int64_t i = 0; i < count; ++i) w[i] = random_nibble_word(t.seed, begin + i, t.nib_lo, t.nib_hi);
      return;
    }
    case Fill::kGroupIndex: {
      std::vector<int32_t> g(t.k);
      if (t.act_order) {
        random_group_index_host(g.data(), t.k, t.group_size, t.seed);
      } else {
        for (int64_t i = 0; i < t.k; ++i) g[i] = static_cast<int32_t>(i / t.group_size);
      }
      std::memcpy(dst, g.data() + begin, count * 4);
      return;
    }
  }
}

StatusOr<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kBF16: return "bfloat16";
    default: return "float16";
  }
}

json quant_block(const QuantConfig& q) {
  if (q.method == QuantMethod::kAwq)
    return {{"quant_method", "awq"}, {"bits", 4}, {"group_size", q.group_size}, {"zero_point", true},
            {"version", "gemm"}};
  return {{"quant_method", "gptq"}, {"bits", 4},        {"group_size", q.group_size},
          {"desc_act", q.desc_act}, {"sym", q.sym},    {"static_groups", false},
          {"checkpoint_format", q.checkpoint_format == GptqFormat::kGptqV2 ? "gptq_v2" : "gptq"}};
}

}  // namespace

StatusOr<SynthConfigResult> synth_from_config(const SynthConfigOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ModelConfig base, memory::load_model_config(o.config_path));
  std::error_code ec;
  const std::string config_file =
      fs::is_directory(o.config_path, ec) ? (fs::path(o.config_path) / "config.json").string() : o.config_path;
  ASSIGN_OR_RETURN(std::string text, read_text(config_file));
  json raw = json::parse(text, nullptr, false);
  if (!raw.is_object()) return invalid_argument(config_file + ": not a JSON object");

  ModelConfig cfg = base;
  if (o.quant != "config") {
    QuantConfig q;
    if (o.quant == "awq" || o.quant == "gptq") {
      q.method = o.quant == "awq" ? QuantMethod::kAwq : QuantMethod::kGptq;
      q.bits = 4;
      q.group_size = o.group_size != 0 ? o.group_size : base.quant.is_int4() ? base.quant.group_size : 128;
      if (q.method == QuantMethod::kAwq && q.group_size <= 0)
        return invalid_argument("--group-size: AWQ needs a positive group size, not " + std::to_string(q.group_size));
      q.desc_act = q.method == QuantMethod::kGptq && o.desc_act;
      q.source = "--quant " + o.quant;
    } else if (o.quant != "none") {
      return invalid_argument("--quant must be config, awq, gptq or none, not '" + o.quant + "'");
    }
    auto quantized = memory::with_quant(base, q);
    if (!quantized.ok())
      return Status(quantized.status().code(), config_file + ": --quant " + o.quant + " (group size " +
                                                   std::to_string(q.group_size) + "): " + quantized.status().message());
    cfg = std::move(quantized).value();
    if (q.is_int4()) raw["quantization_config"] = quant_block(q);
    else raw.erase("quantization_config");
    raw["torch_dtype"] = torch_dtype_name(cfg.torch_dtype);
  } else if (cfg.quant.is_int4() && !raw.contains("quantization_config")) {
    raw["quantization_config"] = quant_block(cfg.quant);  // it came from quant_config.json / quantize_config.json
  }

  // Tensors in the planner's order, cut into shards of at most max_shard_bytes.
  std::vector<TensorPlan> tensors;
  std::vector<uint64_t> shard_bytes = {0};
  for (memory::TensorSpec& s : memory::checkpoint_tensors(cfg)) {
    TensorPlan t = plan_tensor(std::move(s), cfg, o.seed);
    const uint64_t b = static_cast<uint64_t>(t.spec.bytes());
    if (shard_bytes.back() > 0 && shard_bytes.back() + b > o.max_shard_bytes) shard_bytes.push_back(0);
    t.shard = static_cast<int>(shard_bytes.size()) - 1;
    t.offset = shard_bytes.back();
    shard_bytes.back() += b;
    tensors.push_back(std::move(t));
  }
  const int num_shards = static_cast<int>(shard_bytes.size());
  auto shard_name = [&](int s) {
    if (num_shards == 1) return std::string("model.safetensors");
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, num_shards);
    return std::string(name);
  };

  fs::create_directories(o.out_dir, ec);
  if (ec) return not_found(o.out_dir + ": cannot create (" + ec.message() + ")");
  {
    std::ofstream out(fs::path(o.out_dir) / "config.json");
    out << raw.dump(2) << "\n";
    if (!out) return internal_error(o.out_dir + "/config.json: write failed");
  }

  // Headers first (each file opened, header written, sized); then the data by all cores.
  std::vector<int> fds(num_shards, -1);
  std::vector<uint64_t> data_start(num_shards);
  auto close_all = [&] {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  };
  SynthConfigResult result;
  json weight_map = json::object();
  for (int s = 0; s < num_shards; ++s) {
    json header = json::object();
    header["__metadata__"] = {{"format", "pt"}};
    for (const TensorPlan& t : tensors) {
      if (t.shard != s) continue;
      header[t.spec.name] = {{"dtype", dtype_name(t.spec.dtype)},
                             {"shape", t.spec.shape},
                             {"data_offsets", {t.offset, t.offset + static_cast<uint64_t>(t.spec.bytes())}}};
      weight_map[t.spec.name] = shard_name(s);
    }
    std::string h = header.dump();
    while (h.size() % 8 != 0) h.push_back(' ');
    const std::string path = (fs::path(o.out_dir) / shard_name(s)).string();
    fds[s] = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fds[s] < 0) {
      close_all();
      return not_found(path + ": cannot create (" + std::strerror(errno) + ")");
    }
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
    data_start[s] = 8 + h.size();
    if (::pwrite(fds[s], len, 8, 0) != 8 ||
        ::pwrite(fds[s], h.data(), h.size(), 8) != static_cast<ssize_t>(h.size()) ||
        ::ftruncate(fds[s], static_cast<off_t>(data_start[s] + shard_bytes[s])) != 0) {
      const std::string err = std::strerror(errno);
      close_all();
      return internal_error(path + ": write failed (" + err + ")");
    }
  }

  struct Job {
    const TensorPlan* t;
    int64_t begin, count;  // elements (words for packed int4)
  };
  std::vector<Job> jobs;
  for (const TensorPlan& t : tensors) {
    const int64_t esize = static_cast<int64_t>(dtype_size(t.spec.dtype));
    const int64_t n = t.spec.bytes() / esize;
    const int64_t per = t.fill == Fill::kGroupIndex ? n : std::max<int64_t>(1, kChunkBytes / esize);
    for (int64_t b = 0; b < n; b += per) jobs.push_back({&t, b, std::min(per, n - b)});
    result.total_bytes += t.spec.bytes();
  }
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string error;
  auto worker = [&] {
    std::vector<uint8_t> buf;
    for (size_t j = next++; j < jobs.size(); j = next++) {
      const Job& job = jobs[j];
      const int64_t esize = static_cast<int64_t>(dtype_size(job.t->spec.dtype));
      buf.resize(job.count * esize);
      generate(*job.t, job.begin, job.count, buf.data());
      const int fd = fds[job.t->shard];
      uint64_t off = data_start[job.t->shard] + job.t->offset + job.begin * esize;
      size_t done = 0;
      while (done < buf.size()) {
        const ssize_t w = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(off + done));
        if (w <= 0) {
          std::lock_guard<std::mutex> lock(mu);
          if (error.empty()) error = shard_name(job.t->shard) + ": write failed (" + std::strerror(errno) + ")";
          next = jobs.size();
          return;
        }
        done += static_cast<size_t>(w);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (int& fd : fds) {
    if (::close(fd) != 0 && error.empty()) error = std::string("close failed (") + std::strerror(errno) + ")";
    fd = -1;
  }
  if (!error.empty()) return internal_error(o.out_dir + "/" + error);

  if (num_shards > 1) {
    std::ofstream idx(fs::path(o.out_dir) / "model.safetensors.index.json");
    idx << json{{"metadata", {{"total_size", result.total_bytes}}}, {"weight_map", weight_map}}.dump(2) << "\n";
    if (!idx) return internal_error(o.out_dir + "/model.safetensors.index.json: write failed");
  }
  result.num_tensors = static_cast<int64_t>(tensors.size());
  result.num_shards = num_shards;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace tandem
