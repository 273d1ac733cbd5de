// Batch normalization on the CPU over x [count, channels] (NHWC rows, or features), PyTorch's
// semantics, with the activation fused after the affine transform.
//
// Statistics are two-pass (mean, then the mean squared deviation), accumulated in double with
// deterministic per-part partials (parallel.h): one-pass E[x^2] - E[x]^2 loses the variance of
// activations whose mean is large against their spread. Synchronized over the ranks of a
// data-parallel job (d.sync), each pass's sums are all-reduced before they are used: two
// all-reduces forward (sums, then squared deviations from the global mean), one backward.
#include <cmath>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// y[r, c] = act(x[r, c] * scale[c] + shift[c]) over all rows, in parallel.
template <class T>
void affine_act(int64_t rows, int64_t C, const T* x, const T* scale, const T* shift, T* y, Activation act) {
  const int64_t block = std::max<int64_t>(1, 16384 / C);
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c];
    }
    act_forward_array((r1 - r0) * C, y + r0 * C, y + r0 * C, act);
  }
}

}  // namespace

template <class T>
void batchnorm_forward(const Exec& ex, const BatchNormDims& d, BatchNormMode mode, const T* x, const T* gamma,
                       const T* beta, T* running_mean, T* running_var, T* save_mean, T* save_invstd, T* y,
                       Activation act) {
  const int64_t N = d.count, C = d.channels;
  // mean[c], invstd[c] in T; scale and shift of the affine map.
  T* stats = host_scratch<T>(size_t(4 * C), 1);  // slot 0 holds the double sums
  T *mean = stats, *invstd = stats + C, *scale = stats + 2 * C, *shift = stats + 3 * C;

  if (mode == BatchNormMode::Eval) {
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = running_mean[c];
      invstd[c] = T(1) / std::sqrt(running_var[c] + T(d.eps));
    }
  } else {
    GANCU_CHECK(N > 0, "batch norm over an empty batch");
    // The statistics' count: this batch, or the global batch of a synchronized batch norm.
    const int64_t count = d.sync ? N * d.sync->ranks : N;
    double* sum = host_scratch<double>(size_t(2 * C), 0);
    double* sq = sum + C;
    reduce_rows(N, C, C, sum, [&](int64_t r0, int64_t r1, double* acc) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) acc[c] += double(xr[c]);
      }
    });
    if (d.sync) d.sync->all_reduce_sum(ex, sum, C);
    for (int64_t c = 0; c < C; ++c) sum[c] /= double(count);  // now the mean
    reduce_rows(N, C, C, sq, [&](int64_t r0, int64_t r1, double* acc) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const double dev = double(xr[c]) - sum[c];
          acc[c] += dev * dev;
        }
      }
    });
    if (d.sync) d.sync->all_reduce_sum(ex, sq, C);
    for (int64_t c = 0; c < C; ++c) {
      const double var = sq[c] / double(count);  // biased: what normalizes
      mean[c] = T(sum[c]);
      invstd[c] = T(1.0 / std::sqrt(var + double(d.eps)));
      if (save_mean) save_mean[c] = mean[c];
      if (save_invstd) save_invstd[c] = invstd[c];
      if (mode == BatchNormMode::Train) {
        // PyTorch tracks the unbiased variance; with a single value it has none, so keep var.
        const double unbiased = count > 1 ? sq[c] / double(count - 1) : var;
        const double m = d.momentum;
        if (running_mean) running_mean[c] = T((1.0 - m) * double(running_mean[c]) + m * sum[c]);
        if (running_var) running_var[c] = T((1.0 - m) * double(running_var[c]) + m * unbiased);
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = (gamma ? gamma[c] : T(1)) * invstd[c];
    shift[c] = (beta ? beta[c] : T(0)) - mean[c] * scale[c];
  }
  affine_act(N, C, x, scale, shift, y, act);
}

template <class T>
void batchnorm_backward(const Exec& ex, const BatchNormDims& d, const T* x, const T* gamma,
                        const T* save_mean, const T* save_invstd, const T* y, T* dy, T* dx,
                        bool accumulate_dx, T* dgamma, T* dbeta, Activation act) {
  const int64_t N = d.count, C = d.channels;
  act_backward_inplace<T>(N * C, y, dy, act);  // dy is now d(normalized * gamma + beta)

  // sum_dy[c] = sum dy, sum_dyxc[c] = sum dy (x - mean)
  double* sums = host_scratch<double>(size_t(2 * C), 0);
  reduce_rows(N, 2 * C, 2 * C, sums, [&](int64_t r0, int64_t r1, double* acc) {
    double* acc_dyx = acc + C;
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = dy + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        acc[c] += double(gr[c]);
        acc_dyx[c] += double(gr[c]) * (double(xr[c]) - double(save_mean[c]));
      }
    }
  });
  const double* sum_dy = sums;
  const double* sum_dyxc = sums + C;
  if (dbeta)
    for (int64_t c = 0; c < C; ++c) dbeta[c] += T(sum_dy[c]);
  if (dgamma)  // sum dy * xhat = invstd * sum dy (x - mean)
    for (int64_t c = 0; c < C; ++c) dgamma[c] += T(sum_dyxc[c] * double(save_invstd[c]));
  if (!dx) return;
  // Synchronized: every sample's gradient depends on the whole global batch through its
  // statistics, so dx takes the sums over the ranks (the parameter gradients above stay local).
  const int64_t count = d.sync ? N * d.sync->ranks : N;
  if (d.sync) d.sync->all_reduce_sum(ex, sums, 2 * C);

  // dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat))
  //    = a[c] dy + b[c] (x - mean[c]) + e[c]
  T* coef = host_scratch<T>(size_t(3 * C), 1);
  T *a = coef, *b = coef + C, *e = coef + 2 * C;
  for (int64_t c = 0; c < C; ++c) {
    const double is = save_invstd[c];
    const double gi = (gamma ? double(gamma[c]) : 1.0) * is;
    a[c] = T(gi);
    b[c] = T(-gi * is * is * sum_dyxc[c] / double(count));
    e[c] = T(-gi * sum_dy[c] / double(count));
  }
  const int64_t block = std::max<int64_t>(1, 16384 / C);
  const int64_t blocks = (N + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t r1 = std::min(N, (blk + 1) * block);
    for (int64_t r = blk * block; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = dy + r * C;
      T* out = dx + r * C;
      if (accumulate_dx) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) out[c] += a[c] * gr[c] + b[c] * (xr[c] - save_mean[c]) + e[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) out[c] = a[c] * gr[c] + b[c] * (xr[c] - save_mean[c]) + e[c];
      }
    }
  }
}

#define GANCU_INSTANTIATE(T)                                                                               \
  template void batchnorm_forward<T>(const Exec&, const BatchNormDims&, BatchNormMode, const T*, const T*, \
                                     const T*, T*, T*, T*, T*, T*, Activation);                            \
  template void batchnorm_backward<T>(const Exec&, const BatchNormDims&, const T*, const T*, const T*,     \
                                      const T*, const T*, T*, T*, bool, T*, T*, Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
