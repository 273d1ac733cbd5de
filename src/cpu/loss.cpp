// The adversarial objectives on the CPU, each fused with its gradient (see ops.h): one loss term
// of a GAN (BCE, least squares, hinge, linear), BEGAN's L1 reconstruction loss and its
// equilibrium update.
//
// Sums are deterministic (parallel.h: parts fixed by the size, added in order, in double).
#include <cmath>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// One critic output's loss f(l), its derivative f'(l) and its score s(l) (op_types.h, LossKind).
template <class T>
struct LossPoint {
  T value, slope, score;
};

template <class T>
LossPoint<T> loss_point(LossKind kind, T l, T t) {
  switch (kind) {
    case LossKind::BCE: {
      // log(1 + exp(-|l|)) never overflows; max(l, 0) - l t carries the large-|l| part exactly.
      // The sigmoid reuses e = exp(-|l|): the same expressions as activation_math.h's sigmoid.
      const T e = std::exp(-std::abs(l));
      const T prob = l >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      return {std::max(l, T(0)) - l * t + std::log1p(e), prob - t, prob};
    }
    case LossKind::LeastSquares:
      return {(l - t) * (l - t) / T(2), l - t, l};
    case LossKind::Hinge: {
      const T margin = T(1) - t * l;
      return {margin < T(0) ? T(0) : margin, margin > T(0) ? -t : T(0), l};  // NaN stays; kink: slope 0
    }
    case LossKind::Linear:
      return {-t * l, -t, l};
  }
  return {T(0), T(0), l};
}

}  // namespace

template <class T>
void gan_loss(const Exec&, const LossTerm* term_in_memory, int64_t n, const T* logits, T* dlogits,
              T* loss_sum, T* score_sum) {
  const LossTerm term = *term_in_memory;
  if (n <= 0) return;
  const T t = T(term.target);
  const T g = T(term.scale) / T(n);
  double sums[2];  // sum of f(l), sum of s(l)
  reduce_rows(n, 1, 2, sums, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) {
      const LossPoint<T> p = loss_point(term.kind, logits[i], t);
      if (dlogits) dlogits[i] = g * p.slope;
      acc[0] += double(p.value);
      acc[1] += double(p.score);
    }
  });
  if (loss_sum) *loss_sum += T(double(term.scale) * sums[0] / double(n));
  if (score_sum) *score_sum += T(sums[1] / double(n));
}

template <class T>
void l1_reconstruction_loss(const Exec&, int64_t batch, int64_t per_sample, const T* x, const T* recon,
                            float scale, const T* k, T* drecon, T* dx, bool accumulate_dx, T* loss_out,
                            T* loss_sum) {
  const int64_t n = batch * per_sample;
  if (n <= 0) return;
  // s / N, the gradient's magnitude; k (BEGAN's k_t) is read at call time.
  const T g = T(scale) * (k ? *k : T(1)) / T(n);
  double sum = 0;
  reduce_rows(n, 1, 1, &sum, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) {
      const T diff = recon[i] - x[i];
      const T sign = diff > T(0) ? T(1) : (diff < T(0) ? T(-1) : T(0));  // sign(0) = 0
      if (drecon) drecon[i] = g * sign;
      if (dx) dx[i] = accumulate_dx ? dx[i] - g * sign : -g * sign;
      acc[0] += double(std::abs(diff));
    }
  });
  const T loss = T(sum / double(n));
  if (loss_out) *loss_out = loss;
  if (loss_sum) *loss_sum += loss;
}

template <class T>
void began_update(const Exec&, T* k, const T* loss_real, const T* loss_fake, float gamma, float lambda_k,
                  T* convergence_sum) {
  const T d = T(gamma) * *loss_real - *loss_fake;
  const T next = *k + T(lambda_k) * d;
  *k = next < T(0) ? T(0) : (next > T(1) ? T(1) : next);
  if (convergence_sum) *convergence_sum += *loss_real + std::abs(d);
}

#define GANCU_INSTANTIATE(T)                                                                        \
  template void gan_loss<T>(const Exec&, const LossTerm*, int64_t, const T*, T*, T*, T*);           \
  template void l1_reconstruction_loss<T>(const Exec&, int64_t, int64_t, const T*, const T*, float, \
                                          const T*, T*, T*, bool, T*, T*);                          \
  template void began_update<T>(const Exec&, T*, const T*, const T*, float, float, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
