#include "memory/overheads.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tandem::memory {

Overheads default_cuda_overheads() {
  Overheads o;
  o.cuda_context_bytes = kDefaultCudaContextBytes;
  o.cublas_bytes_per_model = kDefaultCublasBytesPerModel;
  o.cuda_graph_bytes_per_model = kDefaultCudaGraphBytesPerModel;
  o.stream_bytes_per_model = kDefaultStreamBytesPerModel;
  o.source = "measured on an H100 80GB, CUDA 13.0 (docs/memory.md)";
  return o;
}

Overheads cpu_overheads() {
  Overheads o;
  o.source = "cpu (no device overheads)";
  return o;
}

StatusOr<Overheads> load_overheads_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open overheads file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(path + ": not a JSON object");
  Overheads o = default_cuda_overheads();
  struct Field {
    const char* key;
    int64_t* dst;
  } fields[] = {{"cuda_context_bytes", &o.cuda_context_bytes},
                {"cublas_bytes_per_model", &o.cublas_bytes_per_model},
                {"cuda_graph_bytes_per_model", &o.cuda_graph_bytes_per_model},
                {"stream_bytes_per_model", &o.stream_bytes_per_model}};
  for (const Field& f : fields) {
    if (!j.contains(f.key)) continue;
    if (!j[f.key].is_number_integer() || j[f.key].get<int64_t>() < 0)
      return invalid_argument(path + ": '" + f.key + "' must be a non-negative integer of bytes");
    *f.dst = j[f.key].get<int64_t>();
  }
  o.source = "measured: " + path;
  return o;
}

}  // namespace tandem::memory
