#include "gancu/penalty.h"

#include "gancu/check.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {

template <class T>
GradientPenalty<T>::GradientPenalty(At at, PenaltyKind kind, float weight, float spread, Shape image)
    : at_(at), kind_(kind), weight_(weight), spread_(spread), image_(image) {}

template <class T>
void GradientPenalty<T>::plan(ArenaPlan& plan, bool record_draws) {
  const size_t n = size_t(image_.numel());
  if (at_ != At::Real) points_slot_ = plan.add_array<T>(ArenaKind::Activations, "penalty points", n);
  g_slot_ = plan.add_array<T>(ArenaKind::Activations, "penalty input gradients", n);
  v_slot_ = plan.add_array<T>(ArenaKind::Activations, "penalty tangent", n);
  if (at_ != At::Real)
    draws_slot_ = plan.add_array<T>(ArenaKind::Activations, "penalty draws", size_t(image_.n));
  if (at_ == At::Perturbed && record_draws)
    u_slot_ = plan.add_array<T>(ArenaKind::Activations, "penalty noise", n);
}

template <class T>
void GradientPenalty<T>::bind(const Arena& arena) {
  const auto get = [&](Slot s) { return s.valid() ? arena.get<T>(s) : nullptr; };
  points_ = get(points_slot_);
  g_ = get(g_slot_);
  v_ = get(v_slot_);
  draws_ = get(draws_slot_);
  u_ = get(u_slot_);
}

template <class T>
void GradientPenalty<T>::apply(const Exec& ex, Network<T>& D, const T* real, const T* fake,
                               const int64_t* data_step, uint64_t seed, uint32_t pass, T* penalty_sum,
                               T* norm_sum) {
  const int B = image_.n;
  const int64_t per_sample = image_.per_sample();
  // 1. The points, and D's forward there.
  if (at_ == At::Interpolated)
    ops::interpolate_samples<T>(ex, B, per_sample, real, fake, points_, draws_, seed, kStreamPenalty,
                                data_step);
  else if (at_ == At::Perturbed)
    ops::perturb_samples<T>(ex, B, per_sample, real, spread_, points_, draws_, u_, seed, kStreamPenalty,
                            data_step);
  if (at_ != At::Real) D.forward(ex, points_, B, BatchNormMode::Train, data_step, seed, pass);
  // 2. g_i = grad_x D(x_i): the backward of sum_i D(x_i), input gradient only.
  ops::fill<T>(ex, B, D.output_grad(), T(1));
  D.backward(ex, g_, false, false);
  // 3. The penalty and its gradient in g.
  ops::gradient_penalty<T>(ex, kind_, B, per_sample, g_, weight_, v_, penalty_sum, norm_sum);
  // 4. d/dtheta <v, grad_x D> = the tangent pass along v and its backward from 1 per sample.
  D.jvp(ex, v_);
  ops::fill<T>(ex, B, D.tangent_output_grad(), T(1));
  D.jvp_backward(ex);
}

template class GradientPenalty<float>;
template class GradientPenalty<double>;

}  // namespace gancu
