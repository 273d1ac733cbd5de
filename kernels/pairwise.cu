// Squared Euclidean distances between the rows of a [m, d] and b [n, d] on the CUDA backend:
//   out[i, j] = max(0, ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j),   out [m, n] row-major.
//
// Three launches: a row-norm kernel (one warp per row of a and of b, into the context's reduction
// scratch), one cuBLAS GEMM out = -2 a b^T (the context's handle, through the `gemm` op of
// gemm.cu, so fp32 or TF32 follows ex.tf32()), and an epilogue that adds both norms and clamps at
// 0 in one read-modify-write pass over out (float4 where n % 4 == 0 and out is 16-byte aligned).
//
// Why this shape: the GEMM runs at tensor-core / SGEMM speed, and the m x n x d difference tensor
// is never formed. The epilogue is separate because cuBLAS's own epilogues add one vector, not a
// row vector and a column vector followed by a clamp; fusing it into a hand-written GEMM is not
// worth the GEMM it would cost (the pass is 8 bytes per output against 2d flops).
//
// Precision: the expansion cancels when a distance is small against the norms (absolute error
// about eps (||a||^2 + ||b||^2), eps = 2^-24 in fp32 and about 2^-11 with TF32: TF32 suits
// ranking neighbours of well-separated points, not measuring tiny distances). Norms are summed in
// fp32 by a fixed shuffle tree, so results are deterministic.
//
// Limits: the norms need m + n floats of the reduction scratch (4 MiB), so m + n <= 1,048,576;
// the evaluation tiles its distance matrices well below that. m, n, d fit int32 (cuBLAS).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

constexpr int kNormWarps = 8;  // rows per block of the norm kernel

// norms[r] = ||row r||^2 for the m rows of a, then the n rows of b.
__global__ void __launch_bounds__(kNormWarps * 32)
    row_norms_kernel(int m, int n, int d, const float* __restrict__ a, const float* __restrict__ b,
                     float* __restrict__ norms) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kNormWarps + threadIdx.x / 32;
  if (row >= int64_t(m) + n) return;  // whole warps leave together
  const float* x = row < m ? a + row * d : b + (row - m) * d;
  float s = 0.0f;
  for (int k = lane; k < d; k += 32) s = fmaf(x[k], x[k], s);
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) norms[row] = s;
}

// out[i, j] = max(0, out[i, j] + na[i] + nb[j]); NaN passes through.
__device__ __forceinline__ float clamp0(float v) {
  return v < 0.0f ? 0.0f : v;
}

__global__ void distance_epilogue_kernel(int m, int n, const float* __restrict__ na,
                                         const float* __restrict__ nb, float* out, bool vec) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {  // n % 4 == 0: the four lanes of a float4 share a row
    const int n4 = n / 4;
    const int64_t total4 = int64_t(m) * n4;
    for (int64_t v = tid; v < total4; v += stride) {
      const int i = int(v / n4), j = int(v % n4) * 4;
      float4 o = reinterpret_cast<float4*>(out)[v];
      const float ni = na[i];
      o.x = clamp0(o.x + ni + nb[j]);
      o.y = clamp0(o.y + ni + nb[j + 1]);
      o.z = clamp0(o.z + ni + nb[j + 2]);
      o.w = clamp0(o.w + ni + nb[j + 3]);
      reinterpret_cast<float4*>(out)[v] = o;
    }
    return;
  }
  const int64_t total = int64_t(m) * n;
  for (int64_t e = tid; e < total; e += stride) {
    const int i = int(e / n), j = int(e % n);
    out[e] = clamp0(out[e] + na[i] + nb[j]);
  }
}

}  // namespace

template <class T>
void pairwise_sq_distances(const Exec& ex, int m, int n, int d, const T* a, const T* b, T* out) {
  static_assert(std::is_same_v<T, float>);
  if (m <= 0 || n <= 0) return;
  CudaContext& ctx = context(ex);
  if (d <= 0) {  // empty rows: every distance is 0
    GANCU_CUDA_CHECK(cudaMemsetAsync(out, 0, size_t(m) * size_t(n) * sizeof(float), ctx.stream));
    return;
  }
  const int64_t rows = int64_t(m) + n;
  GANCU_CHECK(rows * int64_t(sizeof(float)) <= int64_t(ctx.reduce_scratch_bytes),
              "pairwise_sq_distances: m + n = ", rows,
              " row norms do not fit the reduction scratch (at most ",
              ctx.reduce_scratch_bytes / sizeof(float), "); tile the rows");
  float* norms = static_cast<float*>(ctx.reduce_scratch);
  const int norm_blocks = int((rows + kNormWarps - 1) / kNormWarps);
  row_norms_kernel<<<norm_blocks, kNormWarps * 32, 0, ctx.stream>>>(m, n, d, a, b, norms);
  GANCU_CUDA_CHECK_LAUNCH();
  // out[m, n] = -2 a[m, d] b[n, d]^T (row-major; cuBLAS through gemm.cu)
  gemm<float>(ex, false, true, m, n, d, -2.0f, a, d, b, d, 0.0f, out, n);
  const bool vec = n % 4 == 0 && aligned16(out);
  const int64_t work = vec ? int64_t(m) * (n / 4) : int64_t(m) * n;
  distance_epilogue_kernel<<<grid_for(work, ctx), kThreads, 0, ctx.stream>>>(m, n, norms, norms + m, out,
                                                                             vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void pairwise_sq_distances<float>(const Exec&, int, int, int, const float*, const float*, float*);

}  // namespace gancu::cuda
