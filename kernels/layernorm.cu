// Layer normalization on the CUDA backend (op_types.h, LayerNormDims; see ops.h and the CPU twin
// src/cpu/layernorm.cpp for the notation and the derivation): forward, backward, the jvp and the
// backward of the jvp, each with the activation fused after the per-channel affine map.
//
// Row passes: one block of kLnThreads threads per row (sample). The threads stride over the row's
// `cols` values (coalesced), accumulate in double, and block_sums (common.cuh) adds them with a
// fixed tree; the elementwise outputs of the row are written by the same block after its sums,
// rereading the row (it is in L1/L2). Forward: mean, then the squared deviations (two passes, as
// the CPU), then y. Jvp: mean(tx) and mean(xhat tx), then ty. Backward: sum(dxhat) and
// sum(xhat dxhat), then dx. Jvp backward: one pass for mean(tx), mean(xhat tx), sum(dtxhat) and
// sum(xhat dtxhat); a second (when dx is wanted) for sum(dtxhat txhat), sum(dxhat') and
// sum(xhat dxhat'); then dtx and dx. Intermediates (dtz, dz, txhat...) are recomputed from the
// inputs in each pass instead of stored: no workspace, and dty is never overwritten.
//
// Parameter gradients (dgamma, dbeta per channel) sum over all rows and positions: the per-channel
// reduction of batch norm (channel_sums.cuh over the [rows * positions, channels] view, partials
// per row split, a finalize that adds the splits in order in double). Backward fuses dy *= act'(y) into it.
// For the jvp backward the row pass first leaves each row's mean(tx) and mean(xhat tx) in the
// scratch's second half, which the per-channel pass reads to rebuild txhat.
//
// Deterministic: fixed trees and splits, no atomics. The sums are in another order than the CPU's.
// Limits: one block per row keeps the device busy from a few hundred rows; a batch of 64 rows
// (the critics' batch) uses 64 multiprocessors, a fraction of the device; splitting a row over
// several blocks would be the next step if that shows up in a profile. Rows up to 2^31 - 1, and
// up to 262,144 for the jvp backward (two floats per row in half the scratch); channels as batch
// norm (the partials of one split fit half the scratch).
#include <cuda_runtime.h>

#include <type_traits>

#include "channel_sums.cuh"
#include "common.cuh"
#include "cuda_context.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cuda {

namespace {

constexpr int kLnThreads = 256;

struct Row {
  int64_t offset;  // of value 0 of the row
  float mean, invstd;
};

__device__ __forceinline__ float param_or(const float* p, int64_t c, float fallback) {
  return p ? p[c] : fallback;
}

// ---- Forward and jvp ----------------------------------------------------------------------------

__global__ void __launch_bounds__(kLnThreads)
    ln_forward_kernel(LayerNormDims d, const float* x, const float* gamma, const float* beta,
                      float* save_mean, float* save_invstd, float* y, Act kind, float slope) {
  __shared__ double sh[kLnThreads];
  const int64_t N = d.cols, o = int64_t(blockIdx.x) * N;
  const float* xr = x + o;
  double v[1] = {0.0};
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) v[0] += double(xr[j]);
  block_sums<1>(v, sh);
  const double mean_d = v[0] / double(N);
  v[0] = 0.0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const double dev = double(xr[j]) - mean_d;
    v[0] += dev * dev;
  }
  block_sums<1>(v, sh);
  const float mean = float(mean_d), invstd = float(1.0 / sqrt(v[0] / double(N) + double(d.eps)));
  if (threadIdx.x == 0) {
    if (save_mean) save_mean[blockIdx.x] = mean;
    if (save_invstd) save_invstd[blockIdx.x] = invstd;
  }
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t c = j % d.channels;
    y[o + j] = act_forward(param_or(gamma, c, 1.0f) * ((xr[j] - mean) * invstd) + param_or(beta, c, 0.0f),
                           kind, slope);
  }
}

// mean(tx) and mean(xhat tx) of a row, rounded to float as the CPU does.
__device__ __forceinline__ void tangent_means(int64_t N, const float* x, const float* tx, const Row& r,
                                              double* sh, float& mean_tx, float& mean_xhat_tx) {
  double v[2] = {0.0, 0.0};
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const float xhat = (x[r.offset + j] - r.mean) * r.invstd;
    v[0] += double(tx[r.offset + j]);
    v[1] += double(xhat) * double(tx[r.offset + j]);
  }
  block_sums<2>(v, sh);
  mean_tx = float(v[0] / double(N));
  mean_xhat_tx = float(v[1] / double(N));
}

__global__ void __launch_bounds__(kLnThreads)
    ln_jvp_kernel(LayerNormDims d, const float* x, const float* gamma, const float* save_mean,
                  const float* save_invstd, const float* y, const float* tx, float* ty, Act kind,
                  float slope) {
  __shared__ double sh[2 * kLnThreads];
  const int64_t N = d.cols;
  const Row r{int64_t(blockIdx.x) * N, save_mean[blockIdx.x], save_invstd[blockIdx.x]};
  float mean_tx, mean_xhat_tx;
  tangent_means(N, x, tx, r, sh, mean_tx, mean_xhat_tx);
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = r.offset + j;
    const float xhat = (x[i] - r.mean) * r.invstd;
    const float txhat = r.invstd * (tx[i] - mean_tx - xhat * mean_xhat_tx);
    ty[i] = act_backward(param_or(gamma, j % d.channels, 1.0f) * txhat, y[i], kind, slope);
  }
}

// ---- Backward -----------------------------------------------------------------------------------

// dx = r (dxhat - mean(dxhat) - xhat mean(xhat dxhat)), dxhat = gamma dz; dy holds dz already.
__global__ void __launch_bounds__(kLnThreads)
    ln_backward_dx_kernel(LayerNormDims d, const float* x, const float* gamma, const float* save_mean,
                          const float* save_invstd, const float* dz, float* dx, bool accumulate) {
  __shared__ double sh[2 * kLnThreads];
  const int64_t N = d.cols;
  const Row r{int64_t(blockIdx.x) * N, save_mean[blockIdx.x], save_invstd[blockIdx.x]};
  double v[2] = {0.0, 0.0};
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = r.offset + j;
    const float xhat = (x[i] - r.mean) * r.invstd;
    const float dxhat = param_or(gamma, j % d.channels, 1.0f) * dz[i];
    v[0] += double(dxhat);
    v[1] += double(dxhat) * double(xhat);
  }
  block_sums<2>(v, sh);
  const float mean_dxhat = float(v[0] / double(N)), mean_xhat_dxhat = float(v[1] / double(N));
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = r.offset + j;
    const float xhat = (x[i] - r.mean) * r.invstd;
    const float dxhat = param_or(gamma, j % d.channels, 1.0f) * dz[i];
    const float g = r.invstd * (dxhat - mean_dxhat - xhat * mean_xhat_dxhat);
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

// ---- Jvp backward -------------------------------------------------------------------------------

// The adjoints of one value: dtz = act'(y) dty and dz = act'(y) dy + curvature(y) ty dty (0
// without dy for the piecewise-linear activations).
struct JvpAdjoint {
  const float *y, *ty, *dty, *dy;
  Act kind;
  float slope;
  __device__ __forceinline__ float dtz(int64_t i) const { return act_backward(dty[i], y[i], kind, slope); }
  __device__ __forceinline__ float dz(int64_t i) const {
    const float first = dy ? act_backward(dy[i], y[i], kind, slope) : 0.0f;
    return act_is_smooth(kind) ? first + act_curvature(y[i], kind) * ty[i] * dty[i] : first;
  }
};

__global__ void __launch_bounds__(kLnThreads)
    ln_jvp_backward_rows_kernel(LayerNormDims d, const float* x, const float* gamma, const float* save_mean,
                                const float* save_invstd, const float* tx, JvpAdjoint adj, float* dtx,
                                bool accumulate_dtx, float* dx, bool accumulate_dx, float* row_means) {
  __shared__ double sh[4 * kLnThreads];
  const int64_t N = d.cols, C = d.channels;
  const Row r{int64_t(blockIdx.x) * N, save_mean[blockIdx.x], save_invstd[blockIdx.x]};
  // Pass 1: mean(tx), mean(xhat tx), sum(dtxhat), sum(xhat dtxhat).
  double v[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = r.offset + j;
    const float xhat = (x[i] - r.mean) * r.invstd;
    const float dtxhat = param_or(gamma, j % C, 1.0f) * adj.dtz(i);
    v[0] += double(tx[i]);
    v[1] += double(xhat) * double(tx[i]);
    v[2] += double(dtxhat);
    v[3] += double(dtxhat) * double(xhat);
  }
  block_sums<4>(v, sh);
  const float mean_tx = float(v[0] / double(N)), mean_xhat_tx = float(v[1] / double(N));
  const float mean_dt = float(v[2] / double(N)), mean_dt_xhat = float(v[3] / double(N));
  if (threadIdx.x == 0 && row_means) {
    row_means[2 * blockIdx.x] = mean_tx;
    row_means[2 * blockIdx.x + 1] = mean_xhat_tx;
  }
  if (!dtx && !dx) return;  // the parameter pass needed only the row means (uniform per block)
  // dxhat' = gamma dz - r (mean(xhat tx) dtxhat + tx mean(xhat dtxhat)); the same expression in both
  // passes below, so that both see the same bits.
  auto dxhat_second = [&](int64_t i, float g, float dtxhat) {
    return g * adj.dz(i) - r.invstd * (mean_xhat_tx * dtxhat + tx[i] * mean_dt_xhat);
  };
  // Pass 2 (dx only): sum(dtxhat txhat), sum(dxhat'), sum(xhat dxhat').
  float mean_dx = 0.0f, mean_dx_xhat = 0.0f, r_term = 0.0f;
  if (dx) {
    double w[3] = {0.0, 0.0, 0.0};
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      const int64_t i = r.offset + j;
      const float g = param_or(gamma, j % C, 1.0f);
      const float xhat = (x[i] - r.mean) * r.invstd;
      const float txhat = r.invstd * (tx[i] - mean_tx - xhat * mean_xhat_tx);
      const float dtxhat = g * adj.dtz(i);
      const float dxh = dxhat_second(i, g, dtxhat);
      w[0] += double(dtxhat) * double(txhat);
      w[1] += double(dxh);
      w[2] += double(dxh) * double(xhat);
    }
    block_sums<3>(w, sh);
    r_term = float(w[0] / double(N));
    mean_dx = float(w[1] / double(N));
    mean_dx_xhat = float(w[2] / double(N));
  }
  // Pass 3: dtx = r (dtxhat - mean(dtxhat) - xhat mean(xhat dtxhat)) and
  // dx = r (dxhat' - mean(dxhat') - xhat (mean(xhat dxhat') + sum(dtxhat txhat) / N)).
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = r.offset + j;
    const float g = param_or(gamma, j % C, 1.0f);
    const float xhat = (x[i] - r.mean) * r.invstd;
    const float dtxhat = g * adj.dtz(i);
    if (dtx) {
      const float t = r.invstd * (dtxhat - mean_dt - xhat * mean_dt_xhat);
      dtx[i] = accumulate_dtx ? dtx[i] + t : t;
    }
    if (dx) {
      const float t = r.invstd * (dxhat_second(i, g, dtxhat) - mean_dx - xhat * (mean_dx_xhat + r_term));
      dx[i] = accumulate_dx ? dx[i] + t : t;
    }
  }
}

// ---- Per-channel parameter gradients ------------------------------------------------------------

__global__ void ln_channel_finalize_kernel(int channels, int splits, const double* partials, float* dgamma,
                                           float* dbeta) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double a, b;
  channel_pair_totals(partials, splits, channels, c, a, b);
  if (dgamma) dgamma[c] += float(a);
  if (dbeta) dbeta[c] += float(b);
}

// Backward: dy *= act'(y) in place (dy becomes dz); dgamma += dz xhat, dbeta += dz.
struct BackwardTerm {
  const float *x, *mean, *invstd, *y;
  float* dy;
  Act kind;
  float slope;
  int64_t positions;
  __device__ __forceinline__ void operator()(int64_t i, int64_t r, int, double& a, double& b) const {
    const int64_t row = r / positions;
    float g = dy[i];
    if (kind != Act::None) {
      g = act_backward(g, y[i], kind, slope);
      dy[i] = g;
    }
    a += double(g * ((x[i] - mean[row]) * invstd[row]));
    b += double(g);
  }
};

// Jvp backward: dgamma += dtz txhat + dz xhat, dbeta += dz (row_means from the row pass).
struct JvpBackwardTerm {
  const float *x, *mean, *invstd, *tx, *row_means;
  JvpAdjoint adj;
  int64_t positions;
  __device__ __forceinline__ void operator()(int64_t i, int64_t r, int, double& a, double& b) const {
    const int64_t row = r / positions;
    const float xhat = (x[i] - mean[row]) * invstd[row];
    const float txhat = invstd[row] * (tx[i] - row_means[2 * row] - xhat * row_means[2 * row + 1]);
    const float dz = adj.dz(i);
    a += double(adj.dtz(i) * txhat + dz * xhat);
    b += double(dz);
  }
};

// The per-channel pass and its finalize (the finalize only when a gradient is wanted).
template <class Term>
void channel_sums(CudaContext& ctx, const LayerNormDims& d, const Term& term, float* dgamma, float* dbeta) {
  const int64_t positions = d.cols / d.channels, rows = d.rows * positions;
  const int C = d.channels;
  const ReduceGeometry g = reduce_geometry(rows, C, ctx, kChannelPairFloats);
  GANCU_CHECK(
      int64_t(g.splits) * kChannelPairFloats * C <= int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2),
      "layer norm: ", C, " channels exceed the reduction scratch");
  double* partials = reinterpret_cast<double*>(scratch_partials(ctx));
  channel_pair_sums_kernel<Term>
      <<<dim3(g.col_tiles, g.splits), dim3(g.tile_c, g.rows_per_iter), channel_pair_sums_shared(kThreads),
         ctx.stream>>>(rows, C, g.rows_per_split, term, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  if (!dgamma && !dbeta) return;
  ln_channel_finalize_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, ctx.stream>>>(
      C, g.splits, partials, dgamma, dbeta);
  GANCU_CUDA_CHECK_LAUNCH();
}

void check_dims(const LayerNormDims& d, const char* what) {
  check_layernorm_dims(d, what);
  GANCU_CHECK(d.rows < (int64_t(1) << 31), what, ": ", d.rows, " rows (limit 2^31 - 1)");
}

}  // namespace

template <class T>
void layernorm_forward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma, const T* beta,
                       T* save_mean, T* save_invstd, T* y, Activation act) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "layernorm_forward");
  if (d.rows == 0) return;
  ln_forward_kernel<<<unsigned(d.rows), kLnThreads, 0, stream_of(ex)>>>(d, x, gamma, beta, save_mean,
                                                                        save_invstd, y, act.kind, act.slope);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void layernorm_backward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma,
                        const T* save_mean, const T* save_invstd, const T* y, T* dy, T* dx,
                        bool accumulate_dx, T* dgamma, T* dbeta, Activation act) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "layernorm_backward");
  if (d.rows == 0) return;
  CudaContext& ctx = context(ex);
  if (dgamma || dbeta || act.kind != Act::None)  // dy *= act'(y) happens in this pass
    channel_sums(ctx, d,
                 BackwardTerm{x, save_mean, save_invstd, y, dy, act.kind, act.slope, d.cols / d.channels},
                 dgamma, dbeta);
  if (!dx) return;
  ln_backward_dx_kernel<<<unsigned(d.rows), kLnThreads, 0, ctx.stream>>>(d, x, gamma, save_mean, save_invstd,
                                                                         dy, dx, accumulate_dx);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void layernorm_jvp(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma, const T* save_mean,
                   const T* save_invstd, const T* y, const T* tx, T* ty, Activation act) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "layernorm_jvp");
  if (d.rows == 0) return;
  ln_jvp_kernel<<<unsigned(d.rows), kLnThreads, 0, stream_of(ex)>>>(d, x, gamma, save_mean, save_invstd, y,
                                                                    tx, ty, act.kind, act.slope);
  GANCU_CUDA_CHECK_LAUNCH();
}

template <class T>
void layernorm_jvp_backward(const Exec& ex, const LayerNormDims& d, const T* x, const T* gamma,
                            const T* save_mean, const T* save_invstd, const T* y, const T* tx, const T* ty,
                            T* dty, const T* dy, T* dtx, bool accumulate_dtx, T* dx, bool accumulate_dx,
                            T* dgamma, T* dbeta, Activation act) {
  static_assert(std::is_same_v<T, float>);
  check_dims(d, "layernorm_jvp_backward");
  if (d.rows == 0) return;
  CudaContext& ctx = context(ex);
  const bool params = dgamma || dbeta;
  float* row_means = scratch_results(ctx);  // [rows][2]: mean(tx), mean(xhat tx)
  GANCU_CHECK(!params || 2 * d.rows <= int64_t(ctx.reduce_scratch_bytes / sizeof(float) / 2),
              "layernorm_jvp_backward: ", d.rows, " rows exceed the reduction scratch");
  const JvpAdjoint adj{y, ty, dty, dy, act.kind, act.slope};
  if (dtx || dx || params) {
    ln_jvp_backward_rows_kernel<<<unsigned(d.rows), kLnThreads, 0, ctx.stream>>>(
        d, x, gamma, save_mean, save_invstd, tx, adj, dtx, accumulate_dtx, dx, accumulate_dx,
        params ? row_means : nullptr);
    GANCU_CUDA_CHECK_LAUNCH();
  }
  if (params)
    channel_sums(ctx, d, JvpBackwardTerm{x, save_mean, save_invstd, tx, row_means, adj, d.cols / d.channels},
                 dgamma, dbeta);
}

template void layernorm_forward<float>(const Exec&, const LayerNormDims&, const float*, const float*,
                                       const float*, float*, float*, float*, Activation);
template void layernorm_backward<float>(const Exec&, const LayerNormDims&, const float*, const float*,
                                        const float*, const float*, const float*, float*, float*, bool,
                                        float*, float*, Activation);
template void layernorm_jvp<float>(const Exec&, const LayerNormDims&, const float*, const float*,
                                   const float*, const float*, const float*, const float*, float*,
                                   Activation);
template void layernorm_jvp_backward<float>(const Exec&, const LayerNormDims&, const float*, const float*,
                                            const float*, const float*, const float*, const float*,
                                            const float*, float*, const float*, float*, bool, float*, bool,
                                            float*, float*, Activation);

}  // namespace gancu::cuda
