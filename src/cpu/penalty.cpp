// Gradient penalties on the CPU (see ops.h): the points where WGAN-GP (interpolation between real
// and fake) and DRAGAN (perturbation of the real batch) evaluate the critic's input gradient, and
// the penalty of those gradients with its own gradient v, the tangent of the forward-mode pass.
//
// Random numbers come from the Philox stream (seed, stream, *step) (rng.h), element by element
// as documented in ops.h, so that the CUDA backend draws the same ones. The outputs use explicit
// fused multiply-adds (std::fma), as the CUDA kernels do (__fmaf_rn), so that for equal draws
// and equal inputs both backends round the same way.
#include <cmath>

#include "cpu/activation_math.h"
#include "cpu/parallel.h"
#include "cpu/random.h"
#include "gancu/ops.h"

namespace gancu::cpu {
namespace {

// f(i) for each sample i, in parallel when the batch holds enough values.
template <class F>
void for_samples(int64_t batch, int64_t per_sample, F&& f) {
#pragma omp parallel for schedule(static) if (batch * per_sample > kParallelMinWork && batch > 1)
  for (int64_t i = 0; i < batch; ++i) f(i);
}

// The unbiased standard deviation of n values (0 for fewer than 2), two passes in double.
template <class T>
double sample_std(int64_t n, const T* x) {
  if (n < 2) return 0.0;
  double sum = 0, sq = 0;
  reduce_rows(n, 1, 1, &sum, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) acc[0] += double(x[i]);
  });
  const double mean = sum / double(n);
  reduce_rows(n, 1, 1, &sq, [&](int64_t i0, int64_t i1, double* acc) {
    for (int64_t i = i0; i < i1; ++i) acc[0] += (double(x[i]) - mean) * (double(x[i]) - mean);
  });
  return std::sqrt(sq / double(n - 1));
}

}  // namespace

template <class T>
void interpolate_samples(const Exec&, int64_t batch, int64_t per_sample, const T* a, const T* b, T* out,
                         T* eps_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  for_samples(batch, per_sample, [&](int64_t i) {
    const T eps = T(philox_uniform(seed, stream, s, uint64_t(i), 0.0f, 1.0f));
    const T keep = T(1) - eps;
    const int64_t o = i * per_sample;
    for (int64_t j = o; j < o + per_sample; ++j) out[j] = std::fma(eps, a[j], keep * b[j]);
    if (eps_out) eps_out[i] = eps;
  });
}

template <class T>
void perturb_samples(const Exec&, int64_t batch, int64_t per_sample, const T* x, float spread, T* out,
                     T* alpha_out, T* u_out, uint64_t seed, uint32_t stream, const int64_t* step) {
  const uint64_t s = uint64_t(*step);
  const T scaled_sigma = T(spread) * T(sample_std(batch * per_sample, x));  // before out (may alias x)
  for_samples(batch, per_sample, [&](int64_t i) {
    const T alpha = T(philox_uniform(seed, stream, s, uint64_t(i), 0.0f, 1.0f));
    const T coef = (T(1) - alpha) * scaled_sigma;
    const int64_t o = i * per_sample;
    // Value j of the batch draws element batch + j of the stream.
    for_each_philox_element(seed, stream, s, batch + o, batch + o + per_sample,
                            [&](int64_t e, const Philox4& r) {
                              const int64_t j = e - batch;
                              const T u = T(uniform_from_block(r, uint64_t(e), 0.0f, 1.0f));
                              out[j] = std::fma(coef, u, x[j]);
                              if (u_out) u_out[j] = u;
                            });
    if (alpha_out) alpha_out[i] = alpha;
  });
}

template <class T>
void gradient_penalty(const Exec&, PenaltyKind kind, int64_t batch, int64_t per_sample, const T* g,
                      float weight, T* v, T* penalty_sum, T* norm_sum) {
  if (batch <= 0) return;
  double* norms = host_scratch<double>(size_t(batch), 0);
  const double w = weight, B = double(batch);
  for_samples(batch, per_sample, [&](int64_t i) {
    const T* gi = g + i * per_sample;
    double sq = 0;
    for (int64_t j = 0; j < per_sample; ++j) sq += double(gi[j]) * double(gi[j]);
    const double norm = std::sqrt(sq);
    norms[i] = norm;
    // dP/dg_i = coef g_i: TwoSided w 2 (|g| - 1) / |g| / B (0 at g = 0), Squared w 2 / B.
    double coef = 2.0 * w / B;
    if (kind == PenaltyKind::TwoSided) coef = norm > 0.0 ? coef * (norm - 1.0) / norm : 0.0;
    const T c = T(coef);
    T* vi = v + i * per_sample;
    for (int64_t j = 0; j < per_sample; ++j) vi[j] = c * gi[j];
  });
  double terms = 0, norm_total = 0;  // in sample order: the same bits for any thread count
  for (int64_t i = 0; i < batch; ++i) {
    const double t = kind == PenaltyKind::TwoSided ? (norms[i] - 1.0) : norms[i];
    terms += t * t;
    norm_total += norms[i];
  }
  if (penalty_sum) *penalty_sum += T(w * terms / B);
  if (norm_sum) *norm_sum += T(norm_total / B);
}

#define GANCU_INSTANTIATE(T)                                                                                \
  template void interpolate_samples<T>(const Exec&, int64_t, int64_t, const T*, const T*, T*, T*, uint64_t, \
                                       uint32_t, const int64_t*);                                           \
  template void perturb_samples<T>(const Exec&, int64_t, int64_t, const T*, float, T*, T*, T*, uint64_t,    \
                                   uint32_t, const int64_t*);                                               \
  template void gradient_penalty<T>(const Exec&, PenaltyKind, int64_t, int64_t, const T*, float, T*, T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::cpu
