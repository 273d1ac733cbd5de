// Matrix products of the CUDA backend: the `gemm` op (cuBLAS), the linear layer's forward
// (cuBLASLt with the bias, and ReLU, fused into the matmul's epilogue) and its backward.
//
// Layout: gancu's matrices are row-major; cuBLAS is column-major. A row-major [m, n] matrix is
// the column-major [n, m] matrix of its transpose, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: operands swapped, m and n swapped, each transpose flag kept with its
// operand.
//
// Fusion: linear forward's bias (+ ReLU) is the cuBLASLt epilogue (BIAS, RELU_BIAS); other
// activations run as one bias_act pass after it. Linear backward applies the activation's
// derivative to dy in the same pass that sums db (reduce.cu), then dx = dy w (beta = 1 when
// accumulating) and dw += dy^T x (beta = 1).
//
// Precision: fp32 (CUBLAS_COMPUTE_32F) unless the Exec asks for TF32
// (CUBLAS_COMPUTE_32F_FAST_TF32). Limits: dimensions fit int32; cuBLASLt needs the bias 16-byte
// aligned, otherwise (or when no cuBLASLt algorithm is found) the forward falls back to cuBLAS +
// the bias_act kernel. cuBLASLt descriptors and the heuristic's algorithm are cached per
// (shape, epilogue, pointer alignment, TF32), so after the first call a forward is one launch.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool ok = false;
  ~LtPlan() {
    // Destructors report nothing: these calls only free host memory.
    if (a) (void)cublasLtMatrixLayoutDestroy(a);
    if (b) (void)cublasLtMatrixLayoutDestroy(b);
    if (d) (void)cublasLtMatrixLayoutDestroy(d);
    if (op) (void)cublasLtMatmulDescDestroy(op);
  }
};

namespace {

cublasComputeType_t compute_type(const Exec& ex) {
  return ex.tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// log2 of the pointer's alignment, up to 256 bytes.
int align_log2(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int l = 0;
  while (l < 8 && (v & ((uintptr_t(1) << (l + 1)) - 1)) == 0) ++l;
  return l;
}

// Row-major C[m, n] = alpha op(A) op(B) + beta C.
void sgemm_rowmajor(const Exec& ex, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                    const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  CudaContext& ctx = context(ex);
  // k = 0 is valid for cuBLAS: C = beta C.
  GANCU_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_32F, ldb, a,
                                  CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute_type(ex),
                                  CUBLAS_GEMM_DEFAULT));
}

// The cuBLASLt plan of y[batch, out] = x[batch, in] w[out, in]^T (+ epilogue). Column-major view:
// D[out, batch] = op_T(W: [in, out]) * X: [in, batch].
std::shared_ptr<LtPlan> lt_plan(const Exec& ex, int batch, int in, int out, cublasLtEpilogue_t epi,
                                const void* x, const void* w, const void* y) {
  CudaContext& ctx = context(ex);
  const int la = align_log2(w), lb = align_log2(x), ld = align_log2(y);
  const LtKey key{out, batch, in, int(epi), la | (lb << 4) | (ld << 8), ex.tf32()};
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto it = ctx.lt_plans.find(key);
  if (it != ctx.lt_plans.end()) return it->second;

  auto plan = std::make_shared<LtPlan>();
  GANCU_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, compute_type(ex), CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  GANCU_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  GANCU_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  GANCU_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  GANCU_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_32F, in, out, in));
  GANCU_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_32F, in, batch, in));
  GANCU_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->d, CUDA_R_32F, out, batch, out));

  cublasLtMatmulPreference_t pref = nullptr;
  GANCU_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = ctx.blas_workspace_bytes;
  const uint32_t aa = 1u << la, ab = 1u << lb, ad = 1u << ld;
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa,
                                              sizeof(aa));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab,
                                              sizeof(ab));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ad,
                                              sizeof(ad));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ad,
                                              sizeof(ad));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, plan->op, plan->a, plan->b, plan->d, plan->d, pref, 1,
                                        &result, &found);
  GANCU_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  if (st == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->workspace = result.workspaceSize;
    plan->ok = true;
  } else {
    // Not an error: the forward uses cuBLAS + bias_act for this shape. Said once per shape.
    std::fprintf(
        stderr, "gancu: cuBLASLt has no algorithm for linear %dx%d->%d (epilogue %d): %s; using cuBLAS\n",
        batch, in, out, int(epi), cublasGetStatusString(st == CUBLAS_STATUS_SUCCESS ? result.state : st));
  }
  ctx.lt_plans.emplace(key, plan);
  return plan;
}

}  // namespace

template <class T>
void gemm(const Exec& ex, bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  static_assert(std::is_same_v<T, float>);
  sgemm_rowmajor(ex, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void linear_forward(const Exec& ex, const LinearDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  static_assert(std::is_same_v<T, float>);
  if (d.batch <= 0 || d.out <= 0) return;
  CudaContext& ctx = context(ex);
  const bool relu = act.kind == Act::ReLU;
  const cublasLtEpilogue_t epi = b ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                   : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  const bool lt_ok = d.in > 0 && (b == nullptr || aligned16(b));
  std::shared_ptr<LtPlan> plan = lt_ok ? lt_plan(ex, d.batch, d.in, d.out, epi, x, w, y) : nullptr;
  if (plan && plan->ok) {
    const float one = 1.0f, zero = 0.0f;
    std::lock_guard<std::mutex> lock(ctx.mutex);  // the bias pointer lives in the shared descriptor
    if (b) {
      const void* bp = b;
      GANCU_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
    }
    GANCU_CUBLAS_CHECK(cublasLtMatmul(ctx.cublaslt, plan->op, &one, w, plan->a, x, plan->b, &zero, y, plan->d,
                                      y, plan->d, &plan->algo, ctx.blas_workspace, ctx.blas_workspace_bytes,
                                      ctx.stream));
    if (!relu && act.kind != Act::None) bias_act(ex, d.batch, d.out, nullptr, y, act);
    return;
  }
  sgemm_rowmajor(ex, false, true, d.batch, d.out, d.in, 1.0f, x, d.in, w, d.in, 0.0f, y, d.out);
  bias_act(ex, d.batch, d.out, b, y, act);
}

template <class T>
void linear_backward(const Exec& ex, const LinearDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  static_assert(std::is_same_v<T, float>);
  if (d.batch <= 0) return;
  // dy <- dy * act'(y); db += column sums of dy. One pass.
  bias_grad_dact(ex, d.batch, d.out, y, dy, db, act);
  // dx[batch, in] (+)= dy[batch, out] w[out, in]
  if (dx)
    sgemm_rowmajor(ex, false, false, d.batch, d.in, d.out, 1.0f, dy, d.out, w, d.in,
                   accumulate_dx ? 1.0f : 0.0f, dx, d.in);
  // dw[out, in] += dy^T[out, batch] x[batch, in]
  if (dw) sgemm_rowmajor(ex, true, false, d.out, d.in, d.batch, 1.0f, dy, d.out, x, d.in, 1.0f, dw, d.in);
}

template void gemm<float>(const Exec&, bool, bool, int, int, int, float, const float*, int, const float*, int,
                          float, float*, int);
template void linear_forward<float>(const Exec&, const LinearDims&, const float*, const float*, const float*,
                                    float*, Activation);
template void linear_backward<float>(const Exec&, const LinearDims&, const float*, const float*, const float*,
                                     float*, float*, bool, float*, float*, Activation);

}  // namespace gancu::cuda
