// Standalone activation ops on the CPU (the fused ones share activation_math.h), and the
// second-order part of an activation's tangent backward (ops.h, activation_second_order).
#include "cpu/activation_math.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void activation_forward(const Exec&, int64_t n, const T* x, T* y, Activation act) {
  parallel_blocks(n, [&](int64_t i0, int64_t i1) { act_forward_array(i1 - i0, x + i0, y + i0, act); });
}

template <class T>
void activation_backward(const Exec&, int64_t n, const T* y, const T* dy, T* dx, bool accumulate_dx,
                         Activation act) {
  if (!dx) return;
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    act_backward_array(i1 - i0, y + i0, dy + i0, dx + i0, accumulate_dx, act);
  });
}

template <class T>
void activation_second_order(const Exec&, int64_t n, const T* y, const T* ty, const T* dty, const T* dy,
                             T* dz, Activation act) {
  // One expression per element (dz may alias any input).
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T first = dy ? act_backward_one(dy[i], y[i], act) : T(0);
      dz[i] = act_is_smooth(act.kind) ? first + act_curvature(y[i], act.kind) * ty[i] * dty[i] : first;
    }
  });
}

#define GANCU_INSTANTIATE(T)                                                                                 \
  template void activation_forward<T>(const Exec&, int64_t, const T*, T*, Activation);                       \
  template void activation_backward<T>(const Exec&, int64_t, const T*, const T*, T*, bool, Activation);      \
  template void activation_second_order<T>(const Exec&, int64_t, const T*, const T*, const T*, const T*, T*, \
                                           Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
