// The distance head's loss on the CPU (ops.h, distance_head_loss): each image's label (its norm,
// or its mean distance to the others) in double, then the mean squared error of the head against
// the labels and the gradient of weight / (mse + eps). Rows are independent until the mse, so the
// labels run in parallel; the mse sums in row order (the same for any thread count).
#include <cmath>

#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void distance_head_loss(const Exec&, int64_t rows, int64_t cols, const T* x, const T* pair_sq, const T* head,
                        float weight, T* dhead, T* loss_sum) {
  if (rows <= 0) return;
  double* diff = host_scratch<double>(size_t(rows), 0);
#pragma omp parallel for schedule(static) if (rows * (pair_sq ? rows : cols) > kParallelMinWork)
  for (int64_t i = 0; i < rows; ++i) {
    double label = 0;
    if (pair_sq) {
      for (int64_t j = 0; j < rows; ++j)
        if (j != i) label += std::sqrt(double(pair_sq[i * rows + j]));
      label = rows > 1 ? label / double(rows - 1) : 0.0;
    } else {
      for (int64_t c = 0; c < cols; ++c) label += double(x[i * cols + c]) * double(x[i * cols + c]);
      label = std::sqrt(label);
    }
    diff[i] = double(head[i]) - label;
  }
  double mse = 0;
  for (int64_t i = 0; i < rows; ++i) mse += diff[i] * diff[i];
  mse /= double(rows);
  const double denom = mse + kDistanceHeadEps;
  if (loss_sum) *loss_sum += T(double(weight) / denom);
  if (!dhead) return;
  const double scale = -double(weight) / (denom * denom) * 2.0 / double(rows);
  for (int64_t i = 0; i < rows; ++i) dhead[i] = T(scale * diff[i]);
}

#define GANCU_INSTANTIATE(T)                                                                              \
  template void distance_head_loss<T>(const Exec&, int64_t, int64_t, const T*, const T*, const T*, float, \
                                      T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
