// The GAN objectives of the literature (`train.loss`): what the discriminator and the generator
// minimize, and what else a D step does (a gradient penalty, weight clipping, BEGAN's equilibrium
// variable). Gan::train_step asks its Objective what to run at each point of the iteration; each
// loss is one fused op (value and gradient together, ops.h).
//
//   bce          D: BCE(D(x), 1 - s) + BCE(D(G(z)), 0)     G: BCE(D(G(z)), 1)  (non-saturating)
//   bce-minimax  D as bce                                  G: -BCE(D(G(z)), 0) = log(1 - D(G(z)))
//   lsgan        D: (D(x) - 1)^2 / 2 + D(G(z))^2 / 2       G: (D(G(z)) - 1)^2 / 2
//   hinge        D: relu(1 - D(x)) + relu(1 + D(G(z)))     G: -D(G(z))
//   wgan         D: -D(x) + D(G(z)), then every D parameter clipped to [-c, c]    G: -D(G(z))
//   wgan-gp      wgan's losses, no clipping, + lambda (||grad D(xhat)|| - 1)^2 at xhat between x and G(z)
//   dragan       bce's losses + lambda (||grad D(xhat)|| - 1)^2 at xhat = x + noise scaled to x's std
//   r1           bce's losses + gamma / 2 ||grad D(x)||^2 on the real batch, every r1_interval-th D step
//   began        D is an auto-encoder, L(v) = mean |D(v) - v|: D: L(x) - k L(G(z)); G: L(G(z));
//                k = clamp(k + lambda_k (gamma L(x) - L(G(z))), 0, 1) after each D step
// (means over the batch; s is one-sided label smoothing, BCE objectives only). docs/objectives.md
// has the papers, the settings of each preset and what they reach.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gancu/arena.h"
#include "gancu/config.h"
#include "gancu/network.h"
#include "gancu/penalty.h"

namespace gancu {

// The metric sums of an iteration, in backend memory (read by the host every log_every steps).
enum MetricSum {
  kSumLossD,        // D's adversarial loss, per D step (the penalty is kSumPenalty)
  kSumLossG,        // G's loss
  kSumDReal,        // per D step: mean sigmoid(D(x)) (BCE objectives), mean D(x) (the others), L(x) (began)
  kSumDFake,        // the same for G(z)
  kSumDFakeG,       // the same in the G step
  kSumPenalty,      // per penalized D step
  kSumGradNorm,     // mean ||grad_x D|| at the penalty's points, per penalized D step
  kSumConvergence,  // BEGAN's M = L(x) + |gamma L(x) - L(G(z))|, per D step
  kMetricSums
};

class Objective {
 public:
  // Validates the objective's settings against the networks (UsageErrors naming the key) and
  // prepares D for what the objective needs (the tangent pass of a penalty).
  static std::unique_ptr<Objective> make(const Config& cfg, Network<float>& G, Network<float>& D,
                                         Shape image);
  virtual ~Objective() = default;

  const std::string& name() const { return name_; }
  virtual void plan(ArenaPlan& plan, bool record_draws);
  virtual void bind(const Arena& arena);
  virtual void initialize(const Exec& ex);

  // D's loss on its output for the real batch x (D's forward on x has run): writes
  // D.output_grad() and adds to the sums.
  virtual void d_real(const Exec& ex, Network<float>& D, const float* x, float* sums) = 0;
  // The same for the fake batch.
  virtual void d_fake(const Exec& ex, Network<float>& D, const float* fake, float* sums) = 0;
  // G's loss on D's output for the fakes: writes D.output_grad(), and, when the loss also reads
  // the fakes directly (BEGAN), their gradient into fake_grad. Returns whether it wrote fake_grad
  // (D's backward then adds to it).
  virtual bool g_loss(const Exec& ex, Network<float>& D, const float* fake, float* fake_grad,
                      float* sums) = 0;
  // One-sided label smoothing from the next step on (the BCE objectives; a UsageError for the
  // others). Read from backend memory by the loss op, so it also changes a captured graph.
  virtual void set_label_smoothing(const Exec& ex, float s);
  // After D's optimizer step (clipping, BEGAN's k).
  virtual void after_d_step(const Exec&, Network<float>&, float*) {}

  // The gradient penalty, if any, and on which D steps it runs: every one, or (R1's lazy
  // regularization) those whose index over the run is a multiple of penalty_interval().
  GradientPenalty<float>* penalty() const { return penalty_.get(); }
  int penalty_interval() const { return penalty_interval_; }

  // What D's outputs mean in the log: "prob" (sigmoid of a logit), "score" (a critic's raw
  // value) or "recon" (BEGAN's reconstruction loss).
  virtual const char* output_kind() const { return "prob"; }

  // State that belongs in checkpoints (BEGAN's k): name and one float in backend memory.
  virtual std::vector<std::pair<std::string, float*>> state() const { return {}; }

 protected:
  explicit Objective(std::string name) : name_(std::move(name)) {}
  std::string name_;
  std::unique_ptr<GradientPenalty<float>> penalty_;
  int penalty_interval_ = 1;
};

// The valid values of train.loss, for messages and the config.
const std::vector<std::string>& objective_names();

}  // namespace gancu
