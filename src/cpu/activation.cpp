// Standalone activation ops on the CPU (the fused ones share activation_math.h).
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

#define GANCU_INSTANTIATE(T)                                                           \
  template void activation_forward<T>(const Exec&, int64_t, const T*, T*, Activation); \
  template void activation_backward<T>(const Exec&, int64_t, const T*, const T*, T*, bool, Activation);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
