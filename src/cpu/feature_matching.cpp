// Feature matching on the CPU (ops.h, batch_mean / feature_matching_loss): column means over the
// batch as deterministic reductions in double (parallel.h), then the squared distance between
// the fake and the real means and its gradient, which is the same for every row.
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

namespace {
// out[c] = 1/rows sum_r x[r, c], in double.
template <class T>
const double* column_means(int64_t rows, int64_t cols, const T* x) {
  double* sums = host_scratch<double>(size_t(cols), 2);
  reduce_rows(rows, cols, cols, sums, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < cols; ++c) acc[c] += double(x[r * cols + c]);
  });
  for (int64_t c = 0; c < cols; ++c) sums[c] /= double(rows);
  return sums;
}
}  // namespace

template <class T>
void batch_mean(const Exec&, int64_t rows, int64_t cols, const T* x, T* out) {
  if (rows <= 0 || cols <= 0) return;
  const double* mean = column_means(rows, cols, x);
  for (int64_t c = 0; c < cols; ++c) out[c] = T(mean[c]);
}

template <class T>
void feature_matching_loss(const Exec&, int64_t rows, int64_t cols, const T* real_mean, const T* fake,
                           T* dfake, T* loss_sum) {
  if (rows <= 0 || cols <= 0) return;
  double* diff = const_cast<double*>(column_means(rows, cols, fake));
  double loss = 0;
  for (int64_t c = 0; c < cols; ++c) {
    diff[c] -= double(real_mean[c]);
    loss += diff[c] * diff[c];
  }
  if (loss_sum) *loss_sum += T(loss);
  if (!dfake) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dfake[r * cols + c] = T(2.0 * diff[c] / double(rows));
}

#define GANCU_INSTANTIATE(T)                                                \
  template void batch_mean<T>(const Exec&, int64_t, int64_t, const T*, T*); \
  template void feature_matching_loss<T>(const Exec&, int64_t, int64_t, const T*, const T*, T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
