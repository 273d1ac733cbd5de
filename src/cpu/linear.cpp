// Fully connected layer on the CPU: y = act(x w^T + b), w is [out, in] (PyTorch's layout).
// One GEMM, then bias and activation in one pass over y.
#include "cpu/activation_math.h"
#include "cpu/blas.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void linear_forward(const Exec&, const LinearDims& d, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  // y[batch, out] = x[batch, in] * w[out, in]^T
  blas::gemm(false, true, d.batch, d.out, d.in, T(1), x, d.in, w, d.in, T(0), y, d.out);
  bias_act_rows_parallel<T>(d.batch, d.out, y, b, act);
}

template <class T>
void linear_backward(const Exec&, const LinearDims& d, const T* x, const T* w, const T* y, T* dy, T* dx,
                     bool accumulate_dx, T* dw, T* db, Activation act) {
  act_backward_inplace<T>(int64_t(d.batch) * d.out, y, dy, act);  // dy is now d(pre-activation)
  if (db) column_sums_add<T>(dy, d.batch, d.out, db);
  // dw[out, in] += dy[batch, out]^T x[batch, in]
  if (dw) blas::gemm(true, false, d.out, d.in, d.batch, T(1), dy, d.out, x, d.in, T(1), dw, d.in);
  // dx[batch, in] (+)= dy[batch, out] w[out, in]
  if (dx)
    blas::gemm(false, false, d.batch, d.in, d.out, T(1), dy, d.out, w, d.in, accumulate_dx ? T(1) : T(0), dx,
               d.in);
}

#define GANCU_INSTANTIATE(T)                                                                             \
  template void linear_forward<T>(const Exec&, const LinearDims&, const T*, const T*, const T*, T*,      \
                                  Activation);                                                           \
  template void linear_backward<T>(const Exec&, const LinearDims&, const T*, const T*, const T*, T*, T*, \
                                   bool, T*, T*, Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
