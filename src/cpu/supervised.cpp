// The supervised generator's ops on the CPU (ops.h, mse_loss / row_means): the squared error's
// sum as a deterministic reduction in double (parallel.h), the same for any thread count; the
// rows' means independent of each other, each summed in double in pixel order.
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void mse_loss(const Exec&, int64_t n, const T* x, const T* target, T* dx, T* loss_sum) {
  if (n <= 0) return;
  const double scale = 2.0 / double(n);
  double sum = 0;
  reduce_rows(n, 1, 1, &sum, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) {
      const double diff = double(x[i]) - double(target[i]);
      if (dx) dx[i] = T(scale * diff);
      acc[0] += diff * diff;
    }
  });
  if (loss_sum) *loss_sum += T(sum / double(n));
}

template <class T>
void row_means(const Exec&, int64_t rows, int64_t cols, const T* x, T* out) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += double(x[r * cols + c]);
    out[r] = T(s / double(cols));
  }
}

#define GANCU_INSTANTIATE(T)                                                   \
  template void mse_loss<T>(const Exec&, int64_t, const T*, const T*, T*, T*); \
  template void row_means<T>(const Exec&, int64_t, int64_t, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
