// Binary cross-entropy with logits on the CPU, fused with its gradient (see ops.h).
#include <cmath>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {

template <class T>
void bce_with_logits(const Exec&, int64_t n, const T* logits, float target, float grad_scale, T* dlogits,
                     T* loss_sum, T* prob_sum) {
  if (n <= 0) return;
  const T t = T(target);
  const T g = T(grad_scale) / T(n);
  double sums[2];  // sum of per-element losses, sum of sigmoids
  reduce_rows(n, 1, 2, sums, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) {
      const T l = logits[i];
      // log(1 + exp(-|l|)) never overflows; max(l, 0) - l t carries the large-|l| part exactly.
      const T loss = std::max(l, T(0)) - l * t + std::log1p(std::exp(-std::abs(l)));
      const T prob = sigmoid(l);
      if (dlogits) dlogits[i] = g * (prob - t);
      acc[0] += double(loss);
      acc[1] += double(prob);
    }
  });
  if (loss_sum) *loss_sum += T(sums[0] / double(n));
  if (prob_sum) *prob_sum += T(sums[1] / double(n));
}

template void bce_with_logits<float>(const Exec&, int64_t, const float*, float, float, float*, float*,
                                     float*);
template void bce_with_logits<double>(const Exec&, int64_t, const double*, float, float, double*, double*,
                                      double*);

}  // namespace gancu::cpu
