// Batch normalization over x [count, channels] (NHWC rows, or [batch, features]) with the
// activation after the affine transform fused in; PyTorch's semantics (see ops.h).
//
// Forward, Train / BatchOnly: three launches.
//   1. stats: each block runs Welford's update over a tile of rows x channels (channels are the
//      fastest index, so a warp reads consecutive channels: coalesced), merges its threads with
//      Chan's formula in shared memory and writes (count, mean, M2) per channel per row split.
//   2. finalize (one thread per channel, double): merges the splits in a fixed order; writes
//      save_mean / save_invstd, updates the running statistics (Train; unbiased variance), and
//      the per-channel scale = gamma invstd and shift = beta - mean scale.
//   3. apply: y = act(x scale + shift), float4 where channels % 4 == 0.
// Eval: finalize from the running statistics, then apply.
// One pass of Welford instead of two passes (mean, then squared deviations) saves a read of x
// and keeps the accuracy that E[x^2] - E[x]^2 would lose.
//
// Backward: the activation's derivative is applied to dy in place in the same pass that sums
// dy and dy (x - mean) per channel; a finalize adds dbeta, dgamma and computes the coefficients
// of dx = a dy + b (x - mean) + e (the CPU backend's form), and a last pass writes dx.
//
// Synchronized over the ranks of a data-parallel job (d.sync): forward, the row splits are merged
// per channel into (n, sum x, sum x^2) in double, summed over the ranks, turned back into (n, mean,
// M2) and finalized as one split; backward, the parameter gradients come from this rank's sums and
// dx's coefficients from the sums over the ranks.
//
// Deterministic: fixed tiles, fixed merge orders, no atomics. Limits: channels x row splits fit
// the context's reduction scratch (channels up to ~85K); all sums and merges in double (the CPU
// twin's precision: float per-thread sums moved a DCGAN step's update by 2e-3); fewer than 2^31 elements
// (32-bit channel arithmetic in the elementwise passes).
#include <cuda_runtime.h>

#include <type_traits>

#include "channel_sums.cuh"
#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

// ---- Forward statistics -----------------------------------------------------------------------

__device__ __forceinline__ void chan_merge(double& n, double& mean, double& m2, double nb, double meanb,
                                           double m2b) {
  if (nb == 0.0) return;
  const double nn = n + nb;
  const double delta = meanb - mean;
  const double fb = nb / nn;
  mean += delta * fb;
  m2 += m2b + delta * delta * n * fb;
  n = nn;
}

// partials layout: [split][3][channels] = count, mean, M2, in double (Welford's update and Chan's
// merges in double: in float, the per-thread M2 over hundreds of rows lost enough to show in a
// training step's update; the CPU twin works in double too).
__global__ void bn_stats_kernel(int64_t rows, int channels, int64_t rows_per_split, const float* x,
                                double* partials) {
  extern __shared__ double sh[];  // 3 x [blockDim.y][blockDim.x]
  const int nthreads = blockDim.x * blockDim.y;
  double* sh_n = sh;
  double* sh_mean = sh + nthreads;
  double* sh_m2 = sh + 2 * nthreads;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_split;
  const int64_t r1 = min(rows, r0 + rows_per_split);
  double n = 0.0, mean = 0.0, m2 = 0.0;
  if (c < channels) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += blockDim.y) {
      const double v = x[r * channels + c];
      n += 1.0;
      const double d = v - mean;
      mean += d / n;
      m2 += d * (v - mean);
    }
  }
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  sh_n[t] = n;
  sh_mean[t] = mean;
  sh_m2[t] = m2;
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {
    if (int(threadIdx.y) < s) {
      const int o = t + s * blockDim.x;
      double a_n = sh_n[t], a_mean = sh_mean[t], a_m2 = sh_m2[t];
      chan_merge(a_n, a_mean, a_m2, sh_n[o], sh_mean[o], sh_m2[o]);
      sh_n[t] = a_n;
      sh_mean[t] = a_mean;
      sh_m2[t] = a_m2;
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < channels) {
    double* p = partials + int64_t(blockIdx.y) * 3 * channels;
    p[c] = sh_n[threadIdx.x];
    p[channels + c] = sh_mean[threadIdx.x];
    p[2 * channels + c] = sh_m2[threadIdx.x];
  }
}

// One thread per channel. `coef` receives scale [C] and shift [C].
__global__ void bn_stats_finalize_kernel(int channels, int splits, const double* partials, int64_t count,
                                         float eps, float momentum, bool update_running, const float* gamma,
                                         const float* beta, float* running_mean, float* running_var,
                                         float* save_mean, float* save_invstd, float* coef) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double n = 0.0, mean = 0.0, m2 = 0.0;
  for (int k = 0; k < splits; ++k) {
    const double* p = partials + int64_t(k) * 3 * channels;
    const double nb = p[c];
    if (nb == 0.0) continue;
    const double meanb = p[channels + c], m2b = p[2 * channels + c];
    const double nn = n + nb;
    const double delta = meanb - mean;
    mean += delta * nb / nn;
    m2 += m2b + delta * delta * n * nb / nn;
    n = nn;
  }
  const double var = m2 / double(count);  // biased: what normalizes
  const float mean_f = float(mean);
  const float invstd = float(1.0 / sqrt(var + double(eps)));
  if (save_mean) save_mean[c] = mean_f;
  if (save_invstd) save_invstd[c] = invstd;
  if (update_running) {
    const double unbiased = count > 1 ? m2 / double(count - 1) : var;
    const double m = momentum;
    if (running_mean) running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = float((1.0 - m) * double(running_var[c]) + m * unbiased);
  }
  const float scale = (gamma ? gamma[c] : 1.0f) * invstd;
  coef[c] = scale;
  coef[channels + c] = (beta ? beta[c] : 0.0f) - mean_f * scale;
}

// Synchronized forward: the splits of channel c merged (Chan) into split 0's slots as sums that
// add over ranks: (n, n mean, M2 + n mean^2) = (n, sum x, sum x^2). Each thread reads and writes
// only its own channel, so the merge is in place.
__global__ void bn_stats_to_sums_kernel(int channels, int splits, double* partials) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double n = 0.0, mean = 0.0, m2 = 0.0;
  for (int k = 0; k < splits; ++k) {
    const double* p = partials + int64_t(k) * 3 * channels;
    chan_merge(n, mean, m2, p[c], p[channels + c], p[2 * channels + c]);
  }
  partials[c] = n;
  partials[channels + c] = n * mean;
  partials[2 * channels + c] = m2 + n * mean * mean;
}

// The sums over the ranks back to (n, mean, M2), the finalize kernel's one split.
__global__ void bn_sums_to_stats_kernel(int channels, double* sums) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const double n = sums[c];
  const double mean = n > 0.0 ? sums[channels + c] / n : 0.0;
  sums[channels + c] = mean;
  sums[2 * channels + c] = fmax(sums[2 * channels + c] - n * mean * mean, 0.0);
}

__global__ void bn_eval_coef_kernel(int channels, float eps, const float* gamma, const float* beta,
                                    const float* running_mean, const float* running_var, float* coef) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const float invstd = 1.0f / sqrtf(running_var[c] + eps);
  const float scale = (gamma ? gamma[c] : 1.0f) * invstd;
  coef[c] = scale;
  coef[channels + c] = (beta ? beta[c] : 0.0f) - running_mean[c] * scale;
}

// y = act(x scale[c] + shift[c]); coef = scale [C], shift [C].
__global__ void bn_apply_kernel(uint32_t n, uint32_t channels, const float* x, const float* coef, float* y,
                                Act kind, float slope, bool vec) {
  const float* scale = coef;
  const float* shift = coef + channels;
  const uint32_t stride = gridDim.x * blockDim.x;
  const uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t start = 0;
  if (vec) {
    const uint32_t n4 = n / 4;
    for (uint32_t v = tid; v < n4; v += stride) {
      const uint32_t c = (4 * v) % channels;
      const float4 xv = reinterpret_cast<const float4*>(x)[v];
      const float4 sc = *reinterpret_cast<const float4*>(scale + c);
      const float4 sh = *reinterpret_cast<const float4*>(shift + c);
      float4 r;
      r.x = act_forward(xv.x * sc.x + sh.x, kind, slope);
      r.y = act_forward(xv.y * sc.y + sh.y, kind, slope);
      r.z = act_forward(xv.z * sc.z + sh.z, kind, slope);
      r.w = act_forward(xv.w * sc.w + sh.w, kind, slope);
      reinterpret_cast<float4*>(y)[v] = r;
    }
    start = n4 * 4;
  }
  for (uint32_t i = start + tid; i < n; i += stride) {
    const uint32_t c = i % channels;
    y[i] = act_forward(x[i] * scale[c] + shift[c], kind, slope);
  }
}

// ---- Backward ------------------------------------------------------------------------------------

// The backward's sums: a = sum dy, b = sum dy (x - mean); dy gets act'(y) in place.
struct BnBackwardTerm {
  const float *x, *mean, *y;
  float* dy;
  Act kind;
  float slope;
  __device__ __forceinline__ void operator()(int64_t i, int64_t, int c, double& a, double& b) const {
    float g = dy[i];
    if (kind != Act::None) {
      g = act_backward(g, y[i], kind, slope);
      dy[i] = g;
    }
    a += double(g);
    b += double(g) * (double(x[i]) - double(mean[c]));  // the CPU twin's expression
  }
};

// One thread per channel: parameter gradients and the dx coefficients a, b, e ([3][C] in coef).
__global__ void bn_bwd_finalize_kernel(int channels, int splits, const double* partials, int64_t count,
                                       const float* gamma, const float* save_invstd, float* dgamma,
                                       float* dbeta, float* coef) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double sum_dy, sum_dyxc;
  channel_pair_totals(partials, splits, channels, c, sum_dy, sum_dyxc);
  const double is = save_invstd[c];
  if (dbeta) dbeta[c] += float(sum_dy);
  if (dgamma) dgamma[c] += float(sum_dyxc * is);
  const double gi = (gamma ? double(gamma[c]) : 1.0) * is;
  coef[c] = float(gi);
  coef[channels + c] = float(-gi * is * is * sum_dyxc / double(count));
  coef[2 * channels + c] = float(-gi * sum_dy / double(count));
}

// Synchronized backward: the splits' two sums per channel added into split 0's slots (in place,
// one thread per channel), to be summed over the ranks.
__global__ void bn_bwd_merge_splits_kernel(int channels, int splits, double* partials) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double a, b;
  channel_pair_totals(partials, splits, channels, c, a, b);
  partials[c] = a;
  partials[channels + c] = b;
}

// dx (+)= a dy + b (x - mean) + e
__global__ void bn_bwd_dx_kernel(uint32_t n, uint32_t channels, const float* x, const float* mean,
                                 const float* dy, const float* coef, float* dx, bool acc) {
  const float* a = coef;
  const float* b = coef + channels;
  const float* e = coef + 2 * channels;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint32_t c = i % channels;
    const float v = a[c] * dy[i] + b[c] * (x[i] - mean[c]) + e[c];
    dx[i] = acc ? dx[i] + v : v;
  }
}

}  // namespace

template <class T>
void batchnorm_forward(const Exec& ex, const BatchNormDims& d, BatchNormMode mode, const T* x, const T* gamma,
                       const T* beta, T* running_mean, T* running_var, T* save_mean, T* save_invstd, T* y,
                       Activation act) {
  static_assert(std::is_same_v<T, float>);
  const int64_t rows = d.count;
  const int C = d.channels;
  if (C <= 0) return;
  GANCU_CHECK(rows * C < (int64_t(1) << 31), "batch norm over ", rows * C, " values (limit 2^31)");
  CudaContext& ctx = context(ex);
  float* coef = scratch_results(ctx);  // scale [C], shift [C]
  GANCU_CHECK(int64_t(2) * C <= int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2), "batch norm: ", C,
              " channels exceed the reduction scratch");
  const int cgrid = (C + kThreads - 1) / kThreads;
  if (mode == BatchNormMode::Eval) {
    GANCU_CHECK(running_mean && running_var, "batch norm in eval mode needs running statistics");
    bn_eval_coef_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, d.eps, gamma, beta, running_mean, running_var,
                                                            coef);
    GANCU_CUDA_CHECK_LAUNCH();
  } else {
    GANCU_CHECK(rows > 0, "batch norm over an empty batch");
    const ReduceGeometry g = reduce_geometry(rows, C, ctx, 6);  // three double partials
    GANCU_CHECK(int64_t(g.splits) * 6 * C <= int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2),
                "batch norm: ", C, " channels exceed the reduction scratch");
    double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
    bn_stats_kernel<<<dim3(g.col_tiles, g.splits), dim3(g.tile_c, g.rows_per_iter),
                      3 * kThreads * sizeof(double), ctx.stream>>>(rows, C, g.rows_per_split, x, partials);
    GANCU_CUDA_CHECK_LAUNCH();
    int splits = g.splits;
    int64_t count = rows;
    if (d.sync) {
      bn_stats_to_sums_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, g.splits, partials);
      GANCU_CUDA_CHECK_LAUNCH();
      d.sync->all_reduce_sum(ex, partials, int64_t(3) * C);
      bn_sums_to_stats_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, partials);
      GANCU_CUDA_CHECK_LAUNCH();
      splits = 1;
      count = rows * d.sync->ranks;
    }
    bn_stats_finalize_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(
        C, splits, partials, count, d.eps, d.momentum, mode == BatchNormMode::Train, gamma, beta,
        running_mean, running_var, save_mean, save_invstd, coef);
    GANCU_CUDA_CHECK_LAUNCH();
  }
  const int64_t n = rows * C;
  if (n == 0) return;
  const bool vec = C % 4 == 0 && aligned16(x) && aligned16(y);  // coef is 16-byte aligned (scratch half)
  bn_apply_kernel<<<grid_for(vec ? n / 4 : n, ctx), kThreads, 0, ctx.stream>>>(
      uint32_t(n), uint32_t(C), x, coef, y, act.kind, act.slope, vec);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void batchnorm_backward(const Exec& ex, const BatchNormDims& d, const T* x, const T* gamma,
                        const T* save_mean, const T* save_invstd, const T* y, T* dy, T* dx,
                        bool accumulate_dx, T* dgamma, T* dbeta, Activation act) {
  static_assert(std::is_same_v<T, float>);
  const int64_t rows = d.count;
  const int C = d.channels;
  if (C <= 0 || rows <= 0) return;
  GANCU_CHECK(rows * C < (int64_t(1) << 31), "batch norm over ", rows * C, " values (limit 2^31)");
  GANCU_CHECK(save_mean && save_invstd, "batch norm backward needs the saved batch statistics");
  CudaContext& ctx = context(ex);
  const ReduceGeometry g = reduce_geometry(rows, C, ctx, kChannelPairFloats);
  const int64_t half = int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2);
  GANCU_CHECK(int64_t(g.splits) * kChannelPairFloats * C <= half && int64_t(3) * C <= half, "batch norm: ", C,
              " channels exceed the reduction scratch");
  double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
  float* coef = scratch_results(ctx);  // a, b, e: [3][C]
  channel_pair_sums_kernel<BnBackwardTerm><<<dim3(g.col_tiles, g.splits), dim3(g.tile_c, g.rows_per_iter),
                                             channel_pair_sums_shared(kThreads), ctx.stream>>>(
      rows, C, g.rows_per_split, BnBackwardTerm{x, save_mean, y, dy, act.kind, act.slope}, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  const int cgrid = (C + kThreads - 1) / kThreads;
  bn_bwd_finalize_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, g.splits, partials, rows, gamma, save_invstd,
                                                             dgamma, dbeta, coef);
  GANCU_CUDA_CHECK_LAUNCH();
  if (!dx) return;
  if (d.sync) {
    // dgamma and dbeta are done (this rank's); dx's coefficients from the sums over the ranks.
    bn_bwd_merge_splits_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, g.splits, partials);
    GANCU_CUDA_CHECK_LAUNCH();
    d.sync->all_reduce_sum(ex, partials, int64_t(2) * C);
    bn_bwd_finalize_kernel<<<cgrid, kThreads, 0, ctx.stream>>>(C, 1, partials, rows * d.sync->ranks, gamma,
                                                               save_invstd, nullptr, nullptr, coef);
    GANCU_CUDA_CHECK_LAUNCH();
  }
  const int64_t n = rows * C;
  bn_bwd_dx_kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(uint32_t(n), uint32_t(C), x, save_mean, dy,
                                                                  coef, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template void batchnorm_forward<float>(const Exec&, const BatchNormDims&, BatchNormMode, const float*,
                                       const float*, const float*, float*, float*, float*, float*, float*,
                                       Activation);
template void batchnorm_backward<float>(const Exec&, const BatchNormDims&, const float*, const float*,
                                        const float*, const float*, const float*, float*, float*, bool,
                                        float*, float*, Activation);

}  // namespace gancu::cuda
