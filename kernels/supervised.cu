// The supervised generator's ops on the CUDA backend (ops.h, mse_loss / row_means; CPU twin
// src/cpu/supervised.cpp).
//
// mse_loss: a two-stage sum (common.cuh) whose first stage also writes the gradient, so x and
// target are read once; the gradient is computed in double as on the CPU. row_means: one block
// per row, its pixels summed in double by the block's fixed tree.
//
// Deterministic: fixed trees and fixed block ranges, no atomics. Sums may differ from the CPU's
// (which adds in another fixed order) in the last bits of the double before it is rounded.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__global__ void __launch_bounds__(kSumThreads)
    mse_kernel(int64_t n, const float* __restrict__ x, const float* __restrict__ target,
               float* __restrict__ dx, double* __restrict__ partials) {
  __shared__ double sh[kSumThreads];
  const double scale = 2.0 / double(n);
  int64_t i0, i1;
  sum_range(n, i0, i1);
  double v[1] = {0.0};
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const double diff = double(x[i]) - double(target[i]);
    if (dx) dx[i] = float(scale * diff);
    v[0] += diff * diff;
  }
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

__global__ void __launch_bounds__(kSumThreads)
    mse_finalize_kernel(int blocks, const double* __restrict__ partials, int64_t n, float* loss_sum) {
  __shared__ double sh[kSumThreads];
  double v[1];
  sum_partials<1>(blocks, partials, v, sh);
  if (threadIdx.x == 0) *loss_sum += float(v[0] / double(n));
}

__global__ void __launch_bounds__(kSumThreads)
    row_means_kernel(int64_t cols, const float* __restrict__ x, float* __restrict__ out) {
  __shared__ double sh[kSumThreads];
  const float* row = x + int64_t(blockIdx.x) * cols;
  double v[1] = {0.0};
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) v[0] += double(row[c]);
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = float(v[0] / double(cols));
}

}  // namespace

template <class T>
void mse_loss(const Exec& ex, int64_t n, const T* x, const T* target, T* dx, T* loss_sum) {
  static_assert(std::is_same_v<T, float>);
  if (n <= 0) return;
  CudaContext& ctx = context(ex);
  const int blocks = sum_blocks(n);
  double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
  mse_kernel<<<blocks, kSumThreads, 0, ctx.stream>>>(n, x, target, dx, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  if (!loss_sum) return;
  mse_finalize_kernel<<<1, kSumThreads, 0, ctx.stream>>>(blocks, partials, n, loss_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void row_means(const Exec& ex, int64_t rows, int64_t cols, const T* x, T* out) {
  static_assert(std::is_same_v<T, float>);
  if (rows <= 0 || cols <= 0) return;
  GANCU_CHECK(rows <= int64_t(0x7fffffff), "row_means: ", rows, " rows do not fit a grid");
  row_means_kernel<<<unsigned(rows), kSumThreads, 0, stream_of(ex)>>>(cols, x, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void mse_loss<float>(const Exec&, int64_t, const float*, const float*, float*, float*);
template void row_means<float>(const Exec&, int64_t, int64_t, const float*, float*);

}  // namespace gancu::cuda
