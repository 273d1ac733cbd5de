// A gradient penalty on the discriminator: P(grad_x D(x)) at some points x, added to D's loss.
// Its gradient with respect to D's parameters is computed without double backward (DESIGN.md,
// "Gradient penalties without double backward"):
//
//   1. D's forward at the points (for R1 the real pass has already run there);
//   2. D's backward to its input from dD/dD = 1 per sample: g_i = grad_x D(x_i) (no parameter
//      gradients);
//   3. P and v = dP/dg (ops::gradient_penalty; v held constant from here on);
//   4. the tangent pass of D along v and its backward: d/dtheta <v, grad_x D(x; theta)>, which is
//      dP/dtheta, accumulated into D's gradients.
//
// For a critic made of linear maps and piecewise-linear activations, 4 costs about one forward
// and one backward of D; smooth layers (tanh, sigmoid, layer norm) add their second-order terms.
//
// Where the points are: the real batch (R1), the real batch perturbed by noise scaled to its
// spread (DRAGAN), or random points between real and fake samples (WGAN-GP); the draws come from
// Philox stream kStreamPenalty keyed by the data step, so both backends draw the same numbers.
#pragma once

#include "gancu/arena.h"
#include "gancu/exec.h"
#include "gancu/network.h"

namespace gancu {

// Templated on the scalar type: float for training, double for the finite-difference test.
template <class T>
class GradientPenalty {
 public:
  enum class At { Real, Perturbed, Interpolated };

  // `weight` multiplies P (WGAN-GP/DRAGAN: lambda; R1: gamma / 2 times the lazy interval);
  // `spread` is DRAGAN's noise scale. `image` is one sample's shape at the planned batch.
  GradientPenalty(At at, PenaltyKind kind, float weight, float spread, Shape image);

  // Buffers: the points, the input gradients g and the tangent v ([batch, image] each), and the
  // draws (eps or alpha [batch]; DRAGAN's u [batch, image] only when recording, for tests).
  void plan(ArenaPlan& plan, bool record_draws);
  void bind(const Arena& arena);

  // Adds the penalty's gradient to D's parameter gradients and its value and mean gradient norm
  // to the two sums. `real` and `fake` are the batches of this D step ([batch, image]); for At::Real
  // D's last forward must have been on `real`.
  void apply(const Exec& ex, Network<T>& D, const T* real, const T* fake, const int64_t* data_step,
             uint64_t seed, uint32_t pass, T* penalty_sum, T* norm_sum);

  At at() const { return at_; }
  // The draws of the last apply (WGAN-GP's eps, DRAGAN's alpha and u; null when not planned).
  const T* eps_or_alpha() const { return draws_; }
  const T* u() const { return u_; }
  // The input gradients g of the last apply ([batch, image]).
  const T* input_gradients() const { return g_; }

 private:
  At at_;
  PenaltyKind kind_;
  float weight_, spread_;
  Shape image_;
  Slot points_slot_, g_slot_, v_slot_, draws_slot_, u_slot_;
  T* points_ = nullptr;
  T* g_ = nullptr;
  T* v_ = nullptr;
  T* draws_ = nullptr;
  T* u_ = nullptr;
};

}  // namespace gancu
