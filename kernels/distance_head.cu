// The distance head's loss on the CUDA backend (ops.h, distance_head_loss; CPU twin
// src/cpu/distance_head.cpp). One block per image reduces its label (the sum of squares of its
// pixels, or of the square roots of its row of pairwise squared distances) in double by the
// block's fixed tree and writes head - label to the context's reduction scratch; one block then
// sums the squared differences (each thread a fixed strided share, then the tree: deterministic,
// no atomics) and writes the gradient and the loss.
//
// Limits: rows <= the reduction scratch in doubles (4 MiB: 524,288 images).
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

__global__ void __launch_bounds__(kSumThreads)
    distance_label_kernel(int64_t rows, int64_t cols, const float* __restrict__ x,
                          const float* __restrict__ pair_sq, const float* __restrict__ head,
                          double* __restrict__ diff) {
  __shared__ double sh[kSumThreads];
  const int64_t i = blockIdx.x;
  double v[1] = {0.0};
  if (pair_sq) {
    for (int64_t j = threadIdx.x; j < rows; j += blockDim.x)
      if (j != i) v[0] += sqrt(double(pair_sq[i * rows + j]));
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const double p = double(x[i * cols + c]);
      v[0] += p * p;
    }
  }
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) {
    const double label = pair_sq ? (rows > 1 ? v[0] / double(rows - 1) : 0.0) : sqrt(v[0]);
    diff[i] = double(head[i]) - label;
  }
}

__global__ void __launch_bounds__(kSumThreads)
    distance_loss_kernel(int64_t rows, const double* __restrict__ diff, float weight,
                         float* __restrict__ dhead, float* loss_sum) {
  __shared__ double sh[kSumThreads];
  double v[1] = {0.0};
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) v[0] += diff[i] * diff[i];
  block_sums<1>(v, sh);
  const double denom = v[0] / double(rows) + kDistanceHeadEps;
  if (dhead) {
    const double scale = -double(weight) / (denom * denom) * 2.0 / double(rows);
    for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) dhead[i] = float(scale * diff[i]);
  }
  if (loss_sum && threadIdx.x == 0) *loss_sum += float(double(weight) / denom);
}

}  // namespace

template <class T>
void distance_head_loss(const Exec& ex, int64_t rows, int64_t cols, const T* x, const T* pair_sq,
                        const T* head, float weight, T* dhead, T* loss_sum) {
  static_assert(std::is_same_v<T, float>);
  if (rows <= 0) return;
  CudaContext& ctx = context(ex);
  GANCU_CHECK(rows * int64_t(sizeof(double)) <= int64_t(ctx.reduce_scratch_bytes),
              "distance_head_loss: ", rows, " images do not fit the reduction scratch (at most ",
              ctx.reduce_scratch_bytes / sizeof(double), ")");
  double* diff = static_cast<double*>(ctx.reduce_scratch);
  distance_label_kernel<<<unsigned(rows), kSumThreads, 0, ctx.stream>>>(rows, cols, x, pair_sq, head, diff);
  GANCU_CUDA_CHECK_LAUNCH();
  distance_loss_kernel<<<1, kSumThreads, 0, ctx.stream>>>(rows, diff, weight, dhead, loss_sum);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void distance_head_loss<float>(const Exec&, int64_t, int64_t, const float*, const float*,
                                        const float*, float, float*, float*);

}  // namespace gancu::cuda
