#include "backend/cuda/lt_gemm.h"

namespace tandem::cuda {
namespace {

cudaDataType_t lt_type(ElemType t) {
  switch (t) {
    case ElemType::kF32: return CUDA_R_32F;
    case ElemType::kF16: return CUDA_R_16F;
    case ElemType::kBF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

// Column-major view: y^T [N, M] = W [K, N]^T · x^T [K, M].
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descs() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
  cublasStatus_t make(const LtGemmArgs& g) {
    cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b);
    if ((st = cublasLtMatrixLayoutCreate(&a, lt_type(g.w_type), g.K, g.N, g.K))) return st;
    if ((st = cublasLtMatrixLayoutCreate(&b, lt_type(g.x_type), g.K, g.M, g.x_stride))) return st;
    return cublasLtMatrixLayoutCreate(&c, lt_type(g.y_type), g.N, g.M, g.y_stride);
  }
};

}  // namespace

LtGemm::~LtGemm() {
  if (handle_) cublasLtDestroy(handle_);
}

bool LtGemm::init(void* workspace, size_t workspace_bytes, const char** error) {
  if (cublasLtCreate(&handle_) != CUBLAS_STATUS_SUCCESS) {
    *error = "cublasLtCreate failed";
    return false;
  }
  workspace_ = workspace;
  workspace_bytes_ = workspace_bytes;
  return true;
}

int LtGemm::run(const LtGemmArgs& g, cudaStream_t stream) {
  Descs d;
  cublasStatus_t st = d.make(g);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const Key key{g.M, g.N, g.K, g.x_stride, g.y_stride, static_cast<int>(g.w_type),
                static_cast<int>(g.x_type), static_cast<int>(g.y_type)};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &workspace_bytes_, sizeof workspace_bytes_);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    st = cublasLtMatmulAlgoGetHeuristic(handle_, d.op, d.a, d.b, d.c, d.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (found == 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    it = algos_.emplace(key, result.algo).first;
  }
  const float alpha = 1.f, beta = 0.f;
  return cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, g.y, d.c, g.y, d.c,
                        &it->second, workspace_, workspace_bytes_, stream);
}

}  // namespace tandem::cuda
