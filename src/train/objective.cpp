#include "gancu/objective.h"

#include "gancu/arena.h"
#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/ops.h"

namespace gancu {

const std::vector<std::string>& objective_names() {
  static const std::vector<std::string> names = {"bce",     "bce-minimax", "lsgan", "hinge", "wgan",
                                                 "wgan-gp", "dragan",      "r1",    "began"};
  return names;
}

void Objective::plan(ArenaPlan& plan, bool record_draws) {
  if (penalty_) penalty_->plan(plan, record_draws);
}

void Objective::bind(const Arena& arena) {
  if (penalty_) penalty_->bind(arena);
}

void Objective::initialize(const Exec&) {}

void Objective::set_label_smoothing(const Exec&, float) {
  usage_error("train.label_smoothing: train.loss = ", name_, " has no target to smooth");
}

namespace {

// The objectives whose losses are a term per output kind (ops::gan_loss): the BCE family, LSGAN,
// hinge and the Wasserstein critics.
class AdversarialObjective final : public Objective {
 public:
  AdversarialObjective(std::string name, LossTerm real, LossTerm fake, LossTerm gen, float clip)
      : Objective(std::move(name)), terms_{real, fake, gen}, clip_(clip) {}

  // The three terms live in backend memory, where the loss op reads them at each call: a captured
  // CUDA graph follows a change (label smoothing set during training).
  void plan(ArenaPlan& plan, bool record_draws) override {
    Objective::plan(plan, record_draws);
    // Stored as floats: the arena's slots are typed, and a LossTerm is a whole number of floats.
    static_assert(sizeof(LossTerm) % sizeof(float) == 0 && alignof(LossTerm) <= alignof(float));
    constexpr size_t kTermBytes = sizeof terms_;
    slot_ = plan.add_array<float>(ArenaKind::State, "loss terms", kTermBytes / sizeof(float));
  }
  void bind(const Arena& arena) override {
    Objective::bind(arena);
    terms_in_memory_ = reinterpret_cast<LossTerm*>(arena.get<float>(slot_));
  }
  void initialize(const Exec& ex) override { copy_to_device(ex, terms_in_memory_, terms_, sizeof terms_); }
  void set_label_smoothing(const Exec& ex, float s) override {
    if (terms_[0].kind != LossKind::BCE) Objective::set_label_smoothing(ex, s);
    if (!(s >= 0.0f && s < 0.5f)) usage_error("train.label_smoothing: must be in [0, 0.5), got ", s);
    terms_[0].target = 1.0f - s;
    copy_to_device(ex, terms_in_memory_, terms_, sizeof terms_);
  }

  void set_penalty(std::unique_ptr<GradientPenalty<float>> p, int interval) {
    penalty_ = std::move(p);
    penalty_interval_ = interval;
  }

  void d_real(const Exec& ex, Network<float>& D, const float*, float* sums) override {
    ops::gan_loss<float>(ex, terms_in_memory_ + 0, D.planned_batch(), D.output(), D.output_grad(),
                         sums + kSumLossD, sums + kSumDReal);
  }
  void d_fake(const Exec& ex, Network<float>& D, const float*, float* sums) override {
    ops::gan_loss<float>(ex, terms_in_memory_ + 1, D.planned_batch(), D.output(), D.output_grad(),
                         sums + kSumLossD, sums + kSumDFake);
  }
  bool g_loss(const Exec& ex, Network<float>& D, const float*, float*, float* sums) override {
    ops::gan_loss<float>(ex, terms_in_memory_ + 2, D.planned_batch(), D.output(), D.output_grad(),
                         sums + kSumLossG, sums + kSumDFakeG);
    return false;
  }
  void after_d_step(const Exec& ex, Network<float>& D, float*) override {
    if (clip_ > 0.0f) ops::clamp_values<float>(ex, D.param_count(), D.params(), -clip_, clip_);
  }
  const char* output_kind() const override { return terms_[0].kind == LossKind::BCE ? "prob" : "score"; }

 private:
  LossTerm terms_[3];  // real, fake, G
  float clip_;         // > 0: WGAN's weight clipping
  Slot slot_;
  LossTerm* terms_in_memory_ = nullptr;
};

// BEGAN (Berthelot et al. 2017): an auto-encoder discriminator whose reconstruction loss L is
// the critic's value; k balances D's attention between real and fake.
class BeganObjective final : public Objective {
 public:
  BeganObjective(float gamma, float lambda_k, float k0, Shape image)
      : Objective("began"), gamma_(gamma), lambda_k_(lambda_k), k0_(k0), image_(image) {}

  void plan(ArenaPlan& plan, bool record_draws) override {
    Objective::plan(plan, record_draws);
    slot_ = plan.add_array<float>(ArenaKind::State, "began k, L(x), L(G(z))", 3);
  }
  void bind(const Arena& arena) override {
    Objective::bind(arena);
    k_ = arena.get<float>(slot_);
  }
  void initialize(const Exec& ex) override {
    const float init[3] = {k0_, 0.0f, 0.0f};
    copy_to_device(ex, k_, init, sizeof init);
  }

  void d_real(const Exec& ex, Network<float>& D, const float* x, float* sums) override {
    ops::l1_reconstruction_loss<float>(ex, image_.n, image_.per_sample(), x, D.output(), 1.0f, nullptr,
                                       D.output_grad(), nullptr, false, loss_real(), sums + kSumDReal);
  }
  void d_fake(const Exec& ex, Network<float>& D, const float* fake, float* sums) override {
    // -k L(G(z)): scale -1 times k from device memory.
    ops::l1_reconstruction_loss<float>(ex, image_.n, image_.per_sample(), fake, D.output(), -1.0f, k_,
                                       D.output_grad(), nullptr, false, loss_fake(), sums + kSumDFake);
  }
  bool g_loss(const Exec& ex, Network<float>& D, const float* fake, float* fake_grad, float* sums) override {
    // L(G(z)) reads G(z) twice: as D's input (through D's backward) and as the target (directly).
    ops::l1_reconstruction_loss<float>(ex, image_.n, image_.per_sample(), fake, D.output(), 1.0f, nullptr,
                                       D.output_grad(), fake_grad, false, nullptr, sums + kSumLossG);
    return true;
  }
  void after_d_step(const Exec& ex, Network<float>&, float* sums) override {
    ops::began_update<float>(ex, k_, loss_real(), loss_fake(), gamma_, lambda_k_, sums + kSumConvergence);
  }
  const char* output_kind() const override { return "recon"; }
  std::vector<std::pair<std::string, float*>> state() const override { return {{"objective.k", k_}}; }

 private:
  float* loss_real() const { return k_ + 1; }
  float* loss_fake() const { return k_ + 2; }

  float gamma_, lambda_k_, k0_;
  Shape image_;
  Slot slot_;
  float* k_ = nullptr;  // [k, L(x), L(G(z))] of the last D step
};

// D must accept the tangent pass; the message names the key that asked for it.
void require_tangents(Network<float>& D, const std::string& loss) {
  const std::string why = D.tangent_refusal();
  if (!why.empty())
    usage_error("model.discriminator: train.loss = ", loss,
                " adds a gradient penalty, whose tangent pass cannot run through ", why);
  D.enable_tangents();
}

}  // namespace

std::unique_ptr<Objective> Objective::make(const Config& cfg, Network<float>& G, Network<float>& D,
                                           Shape image) {
  const std::string& loss = cfg.loss;
  const Shape one_per_image = Shape::features(image.n, 1);
  if (loss == "began") {
    if (D.output_shape() != image)
      usage_error(
          "model.discriminator: train.loss = began needs an auto-encoder discriminator that "
          "reconstructs its input (output ",
          image.str(), "), but it outputs ", D.output_shape().str(),
          "; end it with layers that give the image back (e.g. \"linear\", \"reshape\", \"convT\", "
          "\"tanh\")");
    return std::make_unique<BeganObjective>(cfg.began_gamma, cfg.began_lambda_k, cfg.began_k0, image);
  }
  if (D.output_shape() != one_per_image)
    usage_error("model.discriminator: must end in one value per image for train.loss = ", loss,
                ", but produces ", D.output_shape().str());
  (void)G;
  const bool bce_family = loss == "bce" || loss == "bce-minimax" || loss == "dragan" || loss == "r1";
  if (!bce_family && cfg.label_smoothing > 0.0f)
    usage_error(
        "train.label_smoothing: one-sided label smoothing is a target of the BCE objectives "
        "(bce, bce-minimax, dragan, r1); train.loss = ",
        loss, " has no target to smooth");

  const float s = cfg.label_smoothing;
  LossTerm real{LossKind::BCE, 1.0f - s, 1.0f}, fake{LossKind::BCE, 0.0f, 1.0f},
      gen{LossKind::BCE, 1.0f, 1.0f};
  float clip = 0.0f;
  if (loss == "bce-minimax") {
    gen = {LossKind::BCE, 0.0f, -1.0f};
  } else if (loss == "lsgan") {
    real = {LossKind::LeastSquares, 1.0f, 1.0f};
    fake = {LossKind::LeastSquares, 0.0f, 1.0f};
    gen = {LossKind::LeastSquares, 1.0f, 1.0f};
  } else if (loss == "hinge") {
    real = {LossKind::Hinge, 1.0f, 1.0f};
    fake = {LossKind::Hinge, -1.0f, 1.0f};
    gen = {LossKind::Linear, 1.0f, 1.0f};
  } else if (loss == "wgan" || loss == "wgan-gp") {
    real = {LossKind::Linear, 1.0f, 1.0f};
    fake = {LossKind::Linear, -1.0f, 1.0f};
    gen = {LossKind::Linear, 1.0f, 1.0f};
    if (loss == "wgan") {
      if (!(cfg.clip > 0.0f))
        usage_error(
            "train.clip: train.loss = wgan clips the critic's weights to [-clip, clip] after each step and "
            "needs clip > 0 (the WGAN paper uses 0.01), got ",
            cfg.clip, "; for a gradient penalty instead use train.loss = wgan-gp");
      clip = cfg.clip;
    }
  } else if (loss != "bce" && loss != "dragan" && loss != "r1") {
    std::string list;
    for (const auto& n : objective_names()) list += (list.empty() ? "" : ", ") + n;
    usage_error("train.loss: unknown objective \"", loss, "\" (known: ", list, ")");
  }
  auto objective = std::make_unique<AdversarialObjective>(loss, real, fake, gen, clip);
  if (loss == "wgan-gp" || loss == "dragan" || loss == "r1") {
    require_tangents(D, loss);
    std::unique_ptr<GradientPenalty<float>> p;
    if (loss == "wgan-gp")
      p = std::make_unique<GradientPenalty<float>>(GradientPenalty<float>::At::Interpolated,
                                                   PenaltyKind::TwoSided, cfg.gp_weight, 0.0f, image);
    else if (loss == "dragan")
      p = std::make_unique<GradientPenalty<float>>(GradientPenalty<float>::At::Perturbed,
                                                   PenaltyKind::TwoSided, cfg.gp_weight, cfg.dragan_spread,
                                                   image);
    else
      p = std::make_unique<GradientPenalty<float>>(GradientPenalty<float>::At::Real, PenaltyKind::Squared,
                                                   0.5f * cfg.r1_gamma * float(cfg.r1_interval), 0.0f, image);
    objective->set_penalty(std::move(p), loss == "r1" ? cfg.r1_interval : 1);
  }
  return objective;
}

}  // namespace gancu
