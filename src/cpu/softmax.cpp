// Softmax over rows and softmax cross-entropy against integer labels on the CPU (see ops.h).
//
// Both are numerically stable: each row is shifted by its maximum before exp, so exp never
// overflows and the largest term is exactly 1 (the sum is >= 1 and its log is finite); the
// cross-entropy uses logsumexp = max + log(sum exp(l - max)), so logits of +-1000 give finite
// losses and gradients. Row sums of exp are accumulated in double.
//
// The cross-entropy's loss and correct-count sums are deterministic: rows are split into a number
// of parts that depends only on n (parallel.h), and the parts are added in order.
#include <cmath>

#include "cpu/parallel.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// max over a row, and sum of exp(l - max) in double.
template <class T>
inline void row_max_sum(const T* l, int classes, T& max, double& sum) {
  T m = l[0];
  for (int j = 1; j < classes; ++j) m = l[j] > m ? l[j] : m;
  double s = 0;
  for (int j = 0; j < classes; ++j) s += double(std::exp(l[j] - m));
  max = m;
  sum = s;
}

// The first index holding the row's maximum (torch.argmax's rule).
template <class T>
inline int row_argmax(const T* l, int classes) {
  int best = 0;
  for (int j = 1; j < classes; ++j)
    if (l[j] > l[best]) best = j;
  return best;
}

}  // namespace

template <class T>
void softmax(const Exec&, int64_t n, int classes, const T* logits, T* probs) {
  if (n <= 0) return;
  GANCU_CHECK(classes >= 1, "softmax over ", classes, " classes");
#pragma omp parallel for schedule(static) if (n * classes > kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* l = logits + i * classes;
    T* p = probs + i * classes;
    T m;
    double s;
    row_max_sum(l, classes, m, s);
    const double inv = 1.0 / s;
    for (int j = 0; j < classes; ++j) p[j] = T(double(std::exp(l[j] - m)) * inv);
  }
}

template <class T>
void softmax_cross_entropy(const Exec&, int64_t n, int classes, const T* logits, const int32_t* labels,
                           float grad_scale, T* dlogits, T* loss_sum, T* correct_sum) {
  if (n <= 0) return;
  GANCU_CHECK(classes >= 1, "softmax_cross_entropy over ", classes, " classes");
  // Labels first, so that a bad one leaves every output untouched.
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      runtime_error("softmax_cross_entropy: label ", labels[i], " of row ", i, " is outside [0, ", classes,
                    ")");
  const double g = double(grad_scale) / double(n);
  double sums[2];  // sum of row losses, number of correct rows
  reduce_rows(n, classes, 2, sums, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* l = logits + i * classes;
      const int label = labels[i];
      T m;
      double s;
      row_max_sum(l, classes, m, s);
      acc[0] += double(m) + std::log(s) - double(l[label]);  // logsumexp - l[label]
      acc[1] += row_argmax(l, classes) == label ? 1.0 : 0.0;
      if (dlogits) {
        T* dl = dlogits + i * classes;
        const double inv = 1.0 / s;
        for (int j = 0; j < classes; ++j) {
          const double p = double(std::exp(l[j] - m)) * inv;
          dl[j] = T(g * (j == label ? p - 1.0 : p));
        }
      }
    }
  });
  if (loss_sum) *loss_sum += T(sums[0] / double(n));
  if (correct_sum) *correct_sum += T(sums[1]);
}

#define GANCU_INSTANTIATE(T)                                                                                 \
  template void softmax<T>(const Exec&, int64_t, int, const T*, T*);                                         \
  template void softmax_cross_entropy<T>(const Exec&, int64_t, int, const T*, const int32_t*, float, T*, T*, \
                                         T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
