// Optimizer steps on the CPU: one pass over a whole flat parameter buffer. Also WGAN's weight
// clipping (clamp_values), applied to the same buffer after the step.
#include <cmath>

#include "cpu/activation_math.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void adam_step(const Exec&, int64_t n, T* param, const T* grad, T* m, T* v, const AdamHyper* hyper,
               int64_t* t) {
  const AdamHyper h = *hyper;
  *t += 1;
  // PyTorch's torch.optim.Adam (foreach=False): bias corrections in double, the update in T.
  const double bc1 = 1.0 - std::pow(double(h.beta1), double(*t));
  const double bc2 = 1.0 - std::pow(double(h.beta2), double(*t));
  const T step = T(double(h.lr) / bc1);
  const T bc2_sqrt = T(std::sqrt(bc2));
  const T b1 = T(h.beta1), b2 = T(h.beta2), eps = T(h.eps), wd = T(h.weight_decay);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) {
      const T g = grad[i] + wd * param[i];
      const T mi = b1 * m[i] + (T(1) - b1) * g;
      const T vi = b2 * v[i] + (T(1) - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] -= step * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
    }
  });
}

template <class T>
void sgd_step(const Exec&, int64_t n, T* param, const T* grad, T* momentum_buf, const SgdHyper* hyper) {
  const SgdHyper h = *hyper;
  const T lr = T(h.lr), mom = T(h.momentum), wd = T(h.weight_decay);
  const bool use_momentum = momentum_buf != nullptr;
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
    if (use_momentum) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const T b = mom * momentum_buf[i] + (grad[i] + wd * param[i]);
        momentum_buf[i] = b;
        param[i] -= lr * b;
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) param[i] -= lr * (grad[i] + wd * param[i]);
    }
  });
}

template <class T>
void rmsprop_step(const Exec&, int64_t n, T* param, const T* grad, T* sq_avg, const RmspropHyper* hyper,
                  int64_t* t) {
  const RmspropHyper h = *hyper;
  *t += 1;
  // PyTorch's torch.optim.RMSprop (foreach=False, not centered, no momentum).
  const T lr = T(h.lr), alpha = T(h.alpha), eps = T(h.eps), wd = T(h.weight_decay);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) {
      const T g = grad[i] + wd * param[i];
      const T v = alpha * sq_avg[i] + (T(1) - alpha) * g * g;
      sq_avg[i] = v;
      param[i] -= lr * (g / (std::sqrt(v) + eps));
    }
  });
}

template <class T>
void clamp_values(const Exec&, int64_t n, T* x, float lo, float hi) {
  const T a = T(lo), b = T(hi);
  parallel_blocks(n, [&](int64_t i0, int64_t i1) {
  // Selects, not std::min/max or fmin/fmax: a NaN stays NaN (as torch.clamp), on both backends.
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) x[i] = x[i] < a ? a : (x[i] > b ? b : x[i]);
  });
}

#define GANCU_INSTANTIATE(T)                                                                            \
  template void adam_step<T>(const Exec&, int64_t, T*, const T*, T*, T*, const AdamHyper*, int64_t*);   \
  template void sgd_step<T>(const Exec&, int64_t, T*, const T*, T*, const SgdHyper*);                   \
  template void rmsprop_step<T>(const Exec&, int64_t, T*, const T*, T*, const RmspropHyper*, int64_t*); \
  template void clamp_values<T>(const Exec&, int64_t, T*, float, float);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
