#include "backend/cuda/overhead_probe.h"

#include <cstdint>
#include <string>
#include <vector>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_info.h"

namespace tandem::cuda {
namespace {

// Device memory in use (bytes), as every process on the device sees it.
StatusOr<int64_t> used_bytes() {
  size_t free_b = 0, total_b = 0;
  const cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
  if (e != cudaSuccess) return internal_error(std::string("cudaMemGetInfo: ") + cudaGetErrorString(e));
  return static_cast<int64_t>(total_b - free_b);
}

Status cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return ok_status();
  return internal_error(std::string(what) + ": " + cudaGetErrorString(e));
}

Status cublas_ok(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return ok_status();
  return internal_error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

// Everything the probe creates, released in reverse order whatever happens.
struct Resources {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  std::vector<void*> buffers;
  std::vector<cudaGraph_t> graphs;
  std::vector<cudaGraphExec_t> execs;
  ~Resources() {
    for (auto g : execs) cudaGraphExecDestroy(g);
    for (auto g : graphs) cudaGraphDestroy(g);
    if (lt) cublasLtDestroy(lt);
    if (blas) cublasDestroy(blas);
    for (void* b : buffers) cudaFree(b);
    if (stream) cudaStreamDestroy(stream);
  }
  StatusOr<void*> alloc(size_t bytes) {
    void* p = nullptr;
    RETURN_IF_ERROR(cuda_ok(cudaMalloc(&p, bytes), "cudaMalloc"));
    buffers.push_back(p);
    return p;
  }
};

// C[m, n] = A[m, k] B[k, n] in fp16 with fp32 accumulation (column-major cuBLAS).
Status gemm(cublasHandle_t h, int m, int n, int k, const void* a, const void* b, void* c) {
  const float alpha = 1.0f, beta = 0.0f;
  return cublas_ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, a, CUDA_R_16F, m, b, CUDA_R_16F, k,
                                &beta, c, CUDA_R_16F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmEx");
}

}  // namespace

StatusOr<std::string> measure_overheads_json(const OverheadProbeOptions& o) {
  if (device_count() <= o.device) return unavailable("no CUDA device " + std::to_string(o.device));
  RETURN_IF_ERROR(cuda_ok(cudaSetDevice(o.device), "cudaSetDevice"));
  RETURN_IF_ERROR(cuda_ok(cudaFree(nullptr), "creating the context"));  // context exists from here
  size_t free_b = 0, total_b = 0;
  RETURN_IF_ERROR(cuda_ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo"));
  nlohmann::json j;
  j["device"] = device_description(o.device);
  j["total_bytes"] = static_cast<int64_t>(total_b);
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  j["cuda_runtime_version"] = runtime;
  j["cuda_driver_version"] = driver;
  const int64_t context = static_cast<int64_t>(total_b - free_b);
  j["cuda_context_bytes"] = context;

  Resources r;
  // Allocation granularity: what one tiny cudaMalloc costs.
  ASSIGN_OR_RETURN(int64_t before, used_bytes());
  ASSIGN_OR_RETURN(void* tiny, r.alloc(1));
  (void)tiny;
  ASSIGN_OR_RETURN(int64_t after, used_bytes());
  j["alloc_granularity_bytes"] = after - before;

  // A stream (each model's engine has its own).
  ASSIGN_OR_RETURN(before, used_bytes());
  RETURN_IF_ERROR(cuda_ok(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  ASSIGN_OR_RETURN(after, used_bytes());
  j["stream_bytes_per_model"] = after - before;

  // cuBLAS and cuBLASLt handles plus a first GEMM (workspace and kernel modules load lazily).
  const int dim = 4096;
  const size_t mat = static_cast<size_t>(dim) * dim * sizeof(__half);
  ASSIGN_OR_RETURN(void* a, r.alloc(mat));
  ASSIGN_OR_RETURN(void* b, r.alloc(mat));
  ASSIGN_OR_RETURN(void* c, r.alloc(mat));
  RETURN_IF_ERROR(cuda_ok(cudaMemset(a, 0, mat), "cudaMemset"));
  RETURN_IF_ERROR(cuda_ok(cudaMemset(b, 0, mat), "cudaMemset"));
  RETURN_IF_ERROR(cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"));
  ASSIGN_OR_RETURN(before, used_bytes());
  RETURN_IF_ERROR(cublas_ok(cublasCreate(&r.blas), "cublasCreate"));
  RETURN_IF_ERROR(cublas_ok(cublasSetStream(r.blas, r.stream), "cublasSetStream"));
  RETURN_IF_ERROR(cublas_ok(cublasLtCreate(&r.lt), "cublasLtCreate"));
  for (int n : {1, 16, 256, dim}) RETURN_IF_ERROR(gemm(r.blas, dim, n, dim, a, b, c));
  RETURN_IF_ERROR(cuda_ok(cudaStreamSynchronize(r.stream), "cudaStreamSynchronize"));
  ASSIGN_OR_RETURN(after, used_bytes());
  j["cublas_bytes_per_model"] = after - before;

  // CUDA graphs: num_graphs decode graphs of graph_layers x nodes_per_layer GEMM nodes.
  // An explicit workspace keeps cuBLAS from allocating during capture.
  const size_t workspace_bytes = size_t{32} << 20;
  ASSIGN_OR_RETURN(void* workspace, r.alloc(workspace_bytes));
  RETURN_IF_ERROR(cublas_ok(cublasSetWorkspace(r.blas, workspace, workspace_bytes), "cublasSetWorkspace"));
  RETURN_IF_ERROR(cuda_ok(cudaStreamSynchronize(r.stream), "cudaStreamSynchronize"));
  ASSIGN_OR_RETURN(before, used_bytes());
  const int nodes = o.graph_layers * o.nodes_per_layer;
  for (int g = 0; g < o.num_graphs; ++g) {
    RETURN_IF_ERROR(cuda_ok(cudaStreamBeginCapture(r.stream, cudaStreamCaptureModeThreadLocal), "begin capture"));
    Status captured = ok_status();
    for (int i = 0; i < nodes && captured.ok(); ++i) captured = gemm(r.blas, dim, 1 + g, dim, a, b, c);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(r.stream, &graph);
    RETURN_IF_ERROR(captured);
    RETURN_IF_ERROR(cuda_ok(end, "end capture"));
    r.graphs.push_back(graph);
    cudaGraphExec_t exec = nullptr;
    RETURN_IF_ERROR(cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate"));
    r.execs.push_back(exec);
    RETURN_IF_ERROR(cuda_ok(cudaGraphLaunch(exec, r.stream), "cudaGraphLaunch"));
  }
  RETURN_IF_ERROR(cuda_ok(cudaStreamSynchronize(r.stream), "cudaStreamSynchronize"));
  ASSIGN_OR_RETURN(after, used_bytes());
  j["cuda_graph_bytes_per_model"] = after - before;
  j["graphs"] = o.num_graphs;
  j["graph_nodes_each"] = nodes;
  j["method"] =
      "cudaMemGetInfo (total - free) deltas around each step on an idle GPU; context = in use right after "
      "cudaFree(0); cuBLAS = cublasCreate + cublasLtCreate + fp16 GEMMs 4096x{1,16,256,4096}x4096; graphs = "
      "capture, instantiate and launch of `graphs` graphs of `graph_nodes_each` GEMM nodes";
  return j.dump(2);
}

}  // namespace tandem::cuda
