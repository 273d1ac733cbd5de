// Layer normalization on the CPU (op_types.h, LayerNormDims; ops.h): each row (sample) of `cols`
// values is normalized by its own mean and biased variance, then scaled and shifted per channel
// (column j belongs to channel j % channels, NHWC), with the activation fused after the affine map
// as batch norm does. Besides forward and backward, the forward-mode derivative (jvp) and the
// backward of that derivative, which the gradient penalties need (network.h, jvp).
//
// Notation per row (N = cols, r = invstd): xhat = (x - mean) r, z = gamma xhat + beta,
// y = act(z); the tangent txhat = r (tx - mean(tx) - xhat mean(xhat tx)), ty = act'(z) gamma txhat.
//
// Row statistics are two-pass (mean, then the mean squared deviation) in double, each sum in eight
// interleaved partial sums (lane_sum). Every pass
// recomputes xhat from x and the saved T-valued mean and invstd, so that all passes differentiate
// the same function. The per-channel parameter gradients sum over rows with the deterministic
// partials of parallel.h (parts fixed by the size, not by the thread count); the per-row sums
// are serial within the row.
#include <cmath>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// f(row) for each row, in parallel when there is enough work.
template <class F>
void for_rows(const LayerNormDims& d, F&& f) {
#pragma omp parallel for schedule(static) if (d.rows * d.cols > kParallelMinWork && d.rows > 1)
  for (int64_t r = 0; r < d.rows; ++r) f(r);
}

// f(j, c) for each value j of a row of N values, c = j % C: positions outer, channels inner, so
// that no value pays a division and the inner loop is contiguous.
template <class F>
inline void for_row_values(int64_t N, int64_t C, F&& f) {
  for (int64_t base = 0; base < N; base += C)
    for (int64_t c = 0; c < C; ++c) f(base + c, c);
}

// sum_j f(j) over j in [0, N) in double, in 8 independent partial sums (lane j % 8) added in a
// fixed order at the end: one chain of N dependent additions would wait on each addition's latency.
template <class F>
inline double lane_sum(int64_t N, F&& f) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= N; j += 8)
    for (int k = 0; k < 8; ++k) lane[k] += f(j + k);
  for (; j < N; ++j) lane[j & 7] += f(j);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

template <class T>
inline T param_or(const T* p, int64_t c, T fallback) {
  return p ? p[c] : fallback;
}

// The row's mean(tx) and mean(xhat tx), the two projections that txhat removes.
template <class T>
void tangent_means(int64_t N, const T* x, T mean, T invstd, const T* tx, double& mean_tx,
                   double& mean_xhat_tx) {
  mean_tx = lane_sum(N, [&](int64_t j) { return double(tx[j]); }) / double(N);
  mean_xhat_tx =
      lane_sum(N, [&](int64_t j) { return double((x[j] - mean) * invstd) * double(tx[j]); }) / double(N);
}

// out (+)= v
template <class T>
inline void store(T* out, int64_t j, T v, bool accumulate) {
  out[j] = accumulate ? out[j] + v : v;
}

}  // namespace

template <class T>
void layernorm_forward(const Exec&, const LayerNormDims& d, const T* x, const T* gamma, const T* beta,
                       T* save_mean, T* save_invstd, T* y, Activation act) {
  check_layernorm_dims(d, "layernorm_forward");
  const int64_t N = d.cols, C = d.channels;
  for_rows(d, [&](int64_t r) {
    const T* xr = x + r * N;
    T* yr = y + r * N;
    const double mean_d = lane_sum(N, [&](int64_t j) { return double(xr[j]); }) / double(N);
    const double sq =
        lane_sum(N, [&](int64_t j) { return (double(xr[j]) - mean_d) * (double(xr[j]) - mean_d); });
    const T mean = T(mean_d), invstd = T(1.0 / std::sqrt(sq / double(N) + double(d.eps)));
    if (save_mean) save_mean[r] = mean;
    if (save_invstd) save_invstd[r] = invstd;
    for_row_values(N, C, [&](int64_t j, int64_t c) {
      yr[j] = param_or(gamma, c, T(1)) * ((xr[j] - mean) * invstd) + param_or(beta, c, T(0));
    });
    act_forward_array(N, yr, yr, act);
  });
}

template <class T>
void layernorm_backward(const Exec&, const LayerNormDims& d, const T* x, const T* gamma, const T* save_mean,
                        const T* save_invstd, const T* y, T* dy, T* dx, bool accumulate_dx, T* dgamma,
                        T* dbeta, Activation act) {
  check_layernorm_dims(d, "layernorm_backward");
  const int64_t N = d.cols, C = d.channels;
  act_backward_inplace<T>(d.rows * N, y, dy, act);  // dy is now dz
  // Per part: dgamma partials [C] (dz xhat), dbeta partials [C] (dz). Each row's dx is written by
  // the part that owns the row, from the row's sums of dxhat = gamma dz and xhat dxhat:
  //   dx = r (dxhat - mean(dxhat) - xhat mean(xhat dxhat)).
  double* sums = host_scratch<double>(size_t(2 * C), 0);
  reduce_rows(d.rows, N, 2 * C, sums, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T *xr = x + r * N, *gr = dy + r * N;
      const T mean = save_mean[r], invstd = save_invstd[r];
      double s = 0, sx = 0;
      for_row_values(N, C, [&](int64_t j, int64_t c) {
        const T xhat = (xr[j] - mean) * invstd;
        const T dxhat = param_or(gamma, c, T(1)) * gr[j];
        acc[c] += double(gr[j]) * double(xhat);
        acc[C + c] += double(gr[j]);
        s += double(dxhat);
        sx += double(dxhat) * double(xhat);
      });
      if (!dx) continue;
      const T mean_dxhat = T(s / double(N)), mean_xhat_dxhat = T(sx / double(N));
      T* out = dx + r * N;
      for_row_values(N, C, [&](int64_t j, int64_t c) {
        const T xhat = (xr[j] - mean) * invstd;
        const T dxhat = param_or(gamma, c, T(1)) * gr[j];
        store(out, j, invstd * (dxhat - mean_dxhat - xhat * mean_xhat_dxhat), accumulate_dx);
      });
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] += T(sums[c]);
    if (dbeta) dbeta[c] += T(sums[C + c]);
  }
}

template <class T>
void layernorm_jvp(const Exec&, const LayerNormDims& d, const T* x, const T* gamma, const T* save_mean,
                   const T* save_invstd, const T* y, const T* tx, T* ty, Activation act) {
  check_layernorm_dims(d, "layernorm_jvp");
  const int64_t N = d.cols, C = d.channels;
  for_rows(d, [&](int64_t r) {
    const T *xr = x + r * N, *txr = tx + r * N, *yr = y + r * N;
    const T mean = save_mean[r], invstd = save_invstd[r];
    double a, m;
    tangent_means(N, xr, mean, invstd, txr, a, m);
    const T mean_tx = T(a), mean_xhat_tx = T(m);
    T* out = ty + r * N;
    for_row_values(N, C, [&](int64_t j, int64_t c) {
      const T xhat = (xr[j] - mean) * invstd;
      const T txhat = invstd * (txr[j] - mean_tx - xhat * mean_xhat_tx);
      out[j] = act_backward_one(param_or(gamma, c, T(1)) * txhat, yr[j], act);
    });
  });
}

// The backward of the jvp, row by row (m = mean(xhat tx); dtxhat = gamma dtz; dxhat = gamma dz):
//   dtx = r (dtxhat - mean(dtxhat) - xhat mean(xhat dtxhat))
//   dxhat' = dxhat - r m dtxhat - r tx mean(xhat dtxhat)        (txhat's dependence on xhat)
//   dx = r (dxhat' - mean(dxhat') - xhat mean(xhat dxhat')) - r xhat sum(dtxhat txhat) / N
// the last term being txhat's dependence on r (dr = sum(dtxhat txhat) / r, dr/dx = -r^2 xhat / N).
template <class T>
void layernorm_jvp_backward(const Exec&, const LayerNormDims& d, const T* x, const T* gamma,
                            const T* save_mean, const T* save_invstd, const T* y, const T* tx, const T* ty,
                            T* dty, const T* dy, T* dtx, bool accumulate_dtx, T* dx, bool accumulate_dx,
                            T* dgamma, T* dbeta, Activation act) {
  check_layernorm_dims(d, "layernorm_jvp_backward");
  const int64_t N = d.cols, C = d.channels;
  // dz = act'(y) dy + curvature(y) ty dty is zero without dy for the piecewise-linear activations.
  const bool has_dz = dy != nullptr || act_is_smooth(act.kind);
  double* sums = host_scratch<double>(size_t(2 * C), 0);
  reduce_rows(d.rows, 2 * N, 2 * C, sums, [&](int64_t r0, int64_t r1, double* acc) {
    T* dtxhat = host_scratch<T>(size_t(2 * N), 1);  // this thread's row buffers
    T* dxhat = dtxhat + N;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r * N;
      const T *xr = x + o, *txr = tx + o;
      const T mean = save_mean[r], invstd = save_invstd[r];
      double a, m;
      tangent_means(N, xr, mean, invstd, txr, a, m);
      const T mean_tx = T(a), mean_xhat_tx = T(m);
      double s_dt = 0, s_dt_xhat = 0, s_dt_txhat = 0;
      for_row_values(N, C, [&](int64_t j, int64_t c) {
        const T g = param_or(gamma, c, T(1));
        const T xhat = (xr[j] - mean) * invstd;
        const T txhat = invstd * (txr[j] - mean_tx - xhat * mean_xhat_tx);
        const T dtz = act_backward_one(dty[o + j], y[o + j], act);
        T dz = T(0);
        if (has_dz) {
          dz = dy ? act_backward_one(dy[o + j], y[o + j], act) : T(0);
          dz += act_curvature(y[o + j], act.kind) * ty[o + j] * dty[o + j];
        }
        acc[c] += double(dtz) * double(txhat) + double(dz) * double(xhat);
        acc[C + c] += double(dz);
        dtxhat[j] = g * dtz;
        dxhat[j] = g * dz;
        s_dt += double(dtxhat[j]);
        s_dt_xhat += double(dtxhat[j]) * double(xhat);
        s_dt_txhat += double(dtxhat[j]) * double(txhat);
      });
      const T mean_dt = T(s_dt / double(N)), mean_dt_xhat = T(s_dt_xhat / double(N));
      if (dtx)
        for (int64_t j = 0; j < N; ++j) {
          const T xhat = (xr[j] - mean) * invstd;
          store(dtx + o, j, invstd * (dtxhat[j] - mean_dt - xhat * mean_dt_xhat), accumulate_dtx);
        }
      if (!dx) continue;
      double s = 0, s_xhat = 0;
      for (int64_t j = 0; j < N; ++j) {
        const T xhat = (xr[j] - mean) * invstd;
        dxhat[j] -= invstd * (mean_xhat_tx * dtxhat[j] + txr[j] * mean_dt_xhat);
        s += double(dxhat[j]);
        s_xhat += double(dxhat[j]) * double(xhat);
      }
      const T mean_dx = T(s / double(N)), mean_dx_xhat = T(s_xhat / double(N));
      const T r_term = T(s_dt_txhat / double(N));
      for (int64_t j = 0; j < N; ++j) {
        const T xhat = (xr[j] - mean) * invstd;
        store(dx + o, j, invstd * (dxhat[j] - mean_dx - xhat * (mean_dx_xhat + r_term)), accumulate_dx);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] += T(sums[c]);
    if (dbeta) dbeta[c] += T(sums[C + c]);
  }
}

#define GANCU_INSTANTIATE(T)                                                                                \
  template void layernorm_forward<T>(const Exec&, const LayerNormDims&, const T*, const T*, const T*, T*,   \
                                     T*, T*, Activation);                                                   \
  template void layernorm_backward<T>(const Exec&, const LayerNormDims&, const T*, const T*, const T*,      \
                                      const T*, const T*, T*, T*, bool, T*, T*, Activation);                \
  template void layernorm_jvp<T>(const Exec&, const LayerNormDims&, const T*, const T*, const T*, const T*, \
                                 const T*, const T*, T*, Activation);                                       \
  template void layernorm_jvp_backward<T>(const Exec&, const LayerNormDims&, const T*, const T*, const T*,  \
                                          const T*, const T*, const T*, const T*, T*, const T*, T*, bool,   \
                                          T*, bool, T*, T*, Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
