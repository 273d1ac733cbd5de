// Minibatch standard deviation (Karras et al. 2018) on the CUDA backend (ops.h; CPU twin
// src/cpu/minibatch_std.cpp). Over x [B, P, C] with F = P C features:
//   sigma_f = sqrt(1/B sum_i (x[i, f] - mean_f)^2 + eps),  s = 1/F sum_f sigma_f,
//   y[i, p, :] = [x[i, p, :], s];   dx[i, f] = dy[i, f] + ds / F (x[i, f] - mean_f) / (B sigma_f)
// with ds the sum of dy over the appended channel.
//
// Forward: one thread per feature computes its mean and sigma (two passes over the batch, in
// double, coalesced across features), one block sums the sigmas in a fixed tree (deterministic,
// no atomics), and one elementwise pass writes y. Backward: one block sums ds into the context's
// reduction scratch, one elementwise pass writes dx. The reduction is cheap next to the
// convolutions around it (B F reads); what matters is that it is one pass and deterministic.
//
// Limits: none beyond int64 sizes; the sums are in double, as on the CPU.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

// F = positions * channels (MinibatchStdDims::features is host code).
__device__ __forceinline__ int64_t features_of(const MinibatchStdDims& d) {
  return d.positions * d.channels;
}

__global__ void feature_stats_kernel(const MinibatchStdDims d, const float* __restrict__ x,
                                     float* __restrict__ stats) {
  const int64_t F = features_of(d);
  for (int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; f < F;
       f += int64_t(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (int64_t i = 0; i < d.batch; ++i) s += double(x[i * F + f]);
    const float mean = float(s / double(d.batch));
    double v = 0.0;
    for (int64_t i = 0; i < d.batch; ++i) {
      const double c = double(x[i * F + f]) - double(mean);
      v += c * c;
    }
    stats[f] = mean;
    stats[F + f] = float(1.0 / sqrt(v / double(d.batch) + double(d.eps)));
  }
}

// stats[2F] = mean of sigma_f = 1 / invstd_f; one block of kSumThreads.
__global__ void __launch_bounds__(kSumThreads) mean_sigma_kernel(const MinibatchStdDims d, float* stats) {
  __shared__ double sh[kSumThreads];
  const int64_t F = features_of(d);
  double v[1] = {0.0};
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) v[0] += 1.0 / double(stats[F + f]);
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) stats[2 * F] = float(v[0] / double(F));
}

__global__ void append_kernel(const MinibatchStdDims d, const float* __restrict__ x,
                              const float* __restrict__ stats, float* __restrict__ y) {
  const int C = d.channels;
  const int64_t total = d.batch * d.positions * (C + 1);
  const float s = stats[2 * features_of(d)];
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / (C + 1);
    const int c = int(e % (C + 1));
    y[e] = c < C ? x[r * C + c] : s;
  }
}

// *ds = sum over rows of dy[r, C]; one block of kSumThreads.
__global__ void __launch_bounds__(kSumThreads)
    appended_grad_sum_kernel(const MinibatchStdDims d, const float* __restrict__ dy, double* ds) {
  __shared__ double sh[kSumThreads];
  const int C = d.channels;
  const int64_t rows = d.batch * d.positions;
  double v[1] = {0.0};
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) v[0] += double(dy[r * (C + 1) + C]);
  block_sums<1>(v, sh);
  if (threadIdx.x == 0) *ds = v[0];
}

__global__ void mbstd_dx_kernel(const MinibatchStdDims d, const float* __restrict__ x,
                                const float* __restrict__ stats, const float* __restrict__ dy,
                                const double* __restrict__ ds, float* dx, bool accumulate) {
  const int C = d.channels;
  const int64_t F = features_of(d), total = d.batch * F;
  const float scale = float(*ds / double(F) / double(d.batch));
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / C, f = e % F;
    const int c = int(e % C);
    const float g = dy[r * (C + 1) + c] + scale * (x[e] - stats[f]) * stats[F + f];
    dx[e] = accumulate ? dx[e] + g : g;
  }
}

}  // namespace

template <class T>
void mbstd_forward(const Exec& ex, const MinibatchStdDims& d, const T* x, T* y, T* stats) {
  static_assert(std::is_same_v<T, float>);
  check_mbstd_dims(d, "mbstd_forward");
  if (d.batch == 0) return;
  CudaContext& ctx = context(ex);
  feature_stats_kernel<<<grid_for(d.features(), ctx), kThreads, 0, ctx.stream>>>(d, x, stats);
  GANCU_CUDA_CHECK_LAUNCH();
  mean_sigma_kernel<<<1, kSumThreads, 0, ctx.stream>>>(d, stats);
  GANCU_CUDA_CHECK_LAUNCH();
  const int64_t total = d.batch * d.positions * (d.channels + 1);
  append_kernel<<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(d, x, stats, y);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void mbstd_backward(const Exec& ex, const MinibatchStdDims& d, const T* x, const T* stats, const T* dy, T* dx,
                    bool accumulate_dx) {
  static_assert(std::is_same_v<T, float>);
  check_mbstd_dims(d, "mbstd_backward");
  if (d.batch == 0 || !dx) return;
  CudaContext& ctx = context(ex);
  double* ds = static_cast<double*>(ctx.reduce_scratch);
  appended_grad_sum_kernel<<<1, kSumThreads, 0, ctx.stream>>>(d, dy, ds);
  GANCU_CUDA_CHECK_LAUNCH();
  mbstd_dx_kernel<<<grid_for(d.batch * d.features(), ctx), kThreads, 0, ctx.stream>>>(d, x, stats, dy, ds, dx,
                                                                                      accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void mbstd_forward<float>(const Exec&, const MinibatchStdDims&, const float*, float*, float*);
template void mbstd_backward<float>(const Exec&, const MinibatchStdDims&, const float*, const float*,
                                    const float*, float*, bool);

}  // namespace gancu::cuda
