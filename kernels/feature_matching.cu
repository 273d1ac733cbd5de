// Feature matching on the CUDA backend (ops.h, batch_mean / feature_matching_loss; CPU twin
// src/cpu/feature_matching.cpp). One thread per feature sums its column over the batch in double
// (coalesced across features); the loss kernel also writes the column's gradient, the same value
// on every row, and its squared difference to the context's reduction scratch, which one block
// then adds in a fixed tree (deterministic, no atomics).
//
// Limits: cols <= the reduction scratch in doubles (4 MiB: 524,288 features).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__device__ __forceinline__ double column_mean(int64_t rows, int64_t cols, const float* x, int64_t c) {
  double s = 0.0;
  for (int64_t r = 0; r < rows; ++r) s += double(x[r * cols + c]);
  return s / double(rows);
}

__global__ void batch_mean_kernel(int64_t rows, int64_t cols, const float* __restrict__ x,
                                  float* __restrict__ out) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += int64_t(gridDim.x) * blockDim.x)
    out[c] = float(column_mean(rows, cols, x, c));
}

__global__ void feature_matching_kernel(int64_t rows, int64_t cols, const float* __restrict__ real_mean,
                                        const float* __restrict__ fake, float* __restrict__ dfake,
                                        double* __restrict__ sq) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += int64_t(gridDim.x) * blockDim.x) {
    const double diff = column_mean(rows, cols, fake, c) - double(real_mean[c]);
    sq[c] = diff * diff;
    if (dfake) {
      const float g = float(2.0 * diff / double(rows));
      for (int64_t r = 0; r < rows; ++r) dfake[r * cols + c] = g;
    }
  }
}

__global__ void __launch_bounds__(kSumThreads)
    add_sum_kernel(int64_t n, const double* __restrict__ sq, float* loss_sum) {
  __shared__ double sh[kSumThreads];
  double v[1] = {0.0};
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v[0] += sq[i];
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) *loss_sum += float(v[0]);
}

}  // namespace

template <class T>
void batch_mean(const Exec& ex, int64_t rows, int64_t cols, const T* x, T* out) {
  static_assert(std::is_same_v<T, float>);
  if (rows <= 0 || cols <= 0) return;
  CudaContext& ctx = context(ex);
  batch_mean_kernel<<<grid_for(cols, ctx), kThreads, 0, ctx.stream>>>(rows, cols, x, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void feature_matching_loss(const Exec& ex, int64_t rows, int64_t cols, const T* real_mean, const T* fake,
                           T* dfake, T* loss_sum) {
  static_assert(std::is_same_v<T, float>);
  if (rows <= 0 || cols <= 0) return;
  CudaContext& ctx = context(ex);
  GANCU_CHECK(cols * int64_t(sizeof(double)) <= int64_t(ctx.reduce_scratch_bytes),
              "feature_matching_loss: ", cols, " features do not fit the reduction scratch (at most ",
              ctx.reduce_scratch_bytes / sizeof(double), ")");
  double* sq = static_cast<double*>(ctx.reduce_scratch);
  feature_matching_kernel<<<grid_for(cols, ctx), kThreads, 0, ctx.stream>>>(rows, cols, real_mean, fake,
                                                                            dfake, sq);
  GANCU_CUDA_CHECK_LAUNCH();
  if (loss_sum) {
    add_sum_kernel<<<1, kSumThreads, 0, ctx.stream>>>(cols, sq, loss_sum);
    GANCU_CUDA_CHECK_LAUNCH();
  }
}

template void batch_mean<float>(const Exec&, int64_t, int64_t, const float*, float*);
template void feature_matching_loss<float>(const Exec&, int64_t, int64_t, const float*, const float*, float*,
                                           float*);

}  // namespace gancu::cuda
