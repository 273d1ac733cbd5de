// Minibatch standard deviation (Karras et al. 2018) on the CPU (ops.h, mbstd_forward /
// mbstd_backward). Over x [B, P, C] with F = P C features:
//   mean_f = 1/B sum_i x[i, f],  sigma_f = sqrt(1/B sum_i (x[i, f] - mean_f)^2 + eps)
//   s = 1/F sum_f sigma_f,       y[i, p, :] = [x[i, p, :], s]
// and backward, with ds = sum_{i, p} dy[i, p, C] (every copy of s gets its gradient):
//   dx[i, f] = dy[i, f] + ds / F (x[i, f] - mean_f) / (B sigma_f)
// The column sums are deterministic reductions in double (parallel.h), two passes (mean, then
// the centred squares) so that a feature with a large mean keeps its small variance.
#include <algorithm>
#include <cmath>

#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void mbstd_forward(const Exec&, const MinibatchStdDims& d, const T* x, T* y, T* stats) {
  check_mbstd_dims(d, "mbstd_forward");
  const int64_t B = d.batch, F = d.features(), C = d.channels;
  if (B == 0) return;
  T* mean = stats;
  T* invstd = stats + F;
  double* sums = host_scratch<double>(size_t(F), 2);
  reduce_rows(B, F, F, sums, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t f = 0; f < F; ++f) acc[f] += double(x[i * F + f]);
  });
  for (int64_t f = 0; f < F; ++f) mean[f] = T(sums[f] / double(B));
  reduce_rows(B, F, F, sums, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t f = 0; f < F; ++f) {
        const double c = double(x[i * F + f]) - double(mean[f]);
        acc[f] += c * c;
      }
  });
  double s = 0;
  for (int64_t f = 0; f < F; ++f) {
    const double sigma = std::sqrt(sums[f] / double(B) + double(d.eps));
    invstd[f] = T(1.0 / sigma);
    s += sigma;
  }
  stats[2 * F] = T(s / double(F));
  const T sv = stats[2 * F];
  const int64_t rows = B * d.positions;
#pragma omp parallel for schedule(static) if (rows * C > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(x + r * C, x + (r + 1) * C, y + r * (C + 1));
    y[r * (C + 1) + C] = sv;
  }
}

template <class T>
void mbstd_backward(const Exec&, const MinibatchStdDims& d, const T* x, const T* stats, const T* dy, T* dx,
                    bool accumulate_dx) {
  check_mbstd_dims(d, "mbstd_backward");
  const int64_t B = d.batch, F = d.features(), C = d.channels, rows = B * d.positions;
  if (B == 0 || !dx) return;
  const T* mean = stats;
  const T* invstd = stats + F;
  double ds = 0;
  for (int64_t r = 0; r < rows; ++r) ds += double(dy[r * (C + 1) + C]);
  const T scale = T(ds / double(F) / double(B));
#pragma omp parallel for schedule(static) if (rows * C > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t f0 = (r % d.positions) * C;  // the feature index of this position's channel 0
    for (int64_t c = 0; c < C; ++c) {
      const T g = dy[r * (C + 1) + c] + scale * (x[r * C + c] - mean[f0 + c]) * invstd[f0 + c];
      dx[r * C + c] = accumulate_dx ? dx[r * C + c] + g : g;
    }
  }
}

#define GANCU_INSTANTIATE(T)                                                                              \
  template void mbstd_forward<T>(const Exec&, const MinibatchStdDims&, const T*, T*, T*);                 \
  template void mbstd_backward<T>(const Exec&, const MinibatchStdDims&, const T*, const T*, const T*, T*, \
                                  bool);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
