// The objectives' own checks: each gradient penalty's gradient with respect to D's parameters
// (through the tangent pass) against finite differences of the penalty itself, in double; and
// every misconfiguration the objectives refuse, with the key it names.
#include "gancu/objective.h"

#include <gtest/gtest.h>

#include "cli_test_util.h"
#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/gan.h"
#include "gancu/ops.h"
#include "gancu/penalty.h"

namespace gancu {
namespace {

// A critic with every kind of tangent behaviour: piecewise-linear (conv, lrelu, max pooling),
// smooth with second-order terms (tanh).
const std::vector<std::string> kCritic = {
    "conv out=3 k=3 s=1 p=1", "lrelu slope=0.2", "maxpool k=2", "conv out=4 k=3 s=1 p=1", "tanh", "flatten",
    "linear out=5",           "lrelu slope=0.2", "linear out=1"};

struct PenaltyCase {
  const char* what;
  GradientPenalty<double>::At at;
  PenaltyKind kind;
  float weight;
};

// P(theta) through GradientPenalty::apply, and its gradient; checked by central differences.
void check_penalty_gradient(const PenaltyCase& c) {
  SCOPED_TRACE(c.what);
  Exec ex = Exec::cpu(1);
  const Shape image = Shape::image(4, 6, 6, 2);
  Network<double> D("D", 2, kCritic, "test", image, InitScheme::PyTorch);
  D.enable_tangents();
  GradientPenalty<double> penalty(c.at, c.kind, c.weight, 0.5f, image);
  ArenaPlan plan;
  D.plan(plan, ex);
  penalty.plan(plan, true);
  Arena arena(Backend::CPU, std::move(plan));
  ex.set_workspace(arena.workspace(), arena.workspace_bytes());
  D.bind(arena);
  penalty.bind(arena);
  D.initialize(ex, 4);
  const std::vector<double> real = test::randn(size_t(image.numel()), 31),
                            fake = test::randn(size_t(image.numel()), 32);
  const int64_t step = 7;
  const auto penalty_value = [&] {
    double sum = 0, norm = 0;
    if (c.at == GradientPenalty<double>::At::Real)
      D.forward(ex, real.data(), image.n, BatchNormMode::Train, &step, 1);
    penalty.apply(ex, D, real.data(), fake.data(), &step, 1, 0, &sum, &norm);
    return sum;
  };
  std::fill(D.grads(), D.grads() + D.param_count(), 0.0);
  const double p = penalty_value();
  EXPECT_GT(p, 0.0);
  const std::vector<double> analytic(D.grads(), D.grads() + D.param_count());
  std::vector<double> params(D.params(), D.params() + D.param_count());
  const auto numeric = test::numeric_grad(params, [&] {
    std::copy(params.begin(), params.end(), D.params());
    return penalty_value();
  });
  EXPECT_LT(test::rel_err(analytic, numeric), test::kGradTol);
}

TEST(Penalty, WganGpGradientMatchesFiniteDifferencesOfThePenalty) {
  check_penalty_gradient(
      {"wgan-gp", GradientPenalty<double>::At::Interpolated, PenaltyKind::TwoSided, 10.0f});
}
TEST(Penalty, DraganGradientMatchesFiniteDifferencesOfThePenalty) {
  check_penalty_gradient({"dragan", GradientPenalty<double>::At::Perturbed, PenaltyKind::TwoSided, 10.0f});
}
TEST(Penalty, R1GradientMatchesFiniteDifferencesOfThePenalty) {
  check_penalty_gradient({"r1", GradientPenalty<double>::At::Real, PenaltyKind::Squared, 5.0f});
}

// ---- What the objectives refuse ------------------------------------------------------------

Config with(const std::string& preset, const std::vector<std::pair<std::string, std::string>>& sets) {
  std::vector<ConfigOverride> o;
  for (const auto& [k, v] : sets) o.push_back({k, v, "--set " + k});
  return load_config(preset, "", o);
}

void expect_gan_error(const Config& cfg, const std::vector<std::string>& parts) {
  try {
    Gan gan(cfg, Shape::image(0, 28, 28, 1), 4);
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(Objective, AnUnknownLossListsTheKnownOnes) {
  try {
    with("dcgan", {{"train.loss", "wasserstein"}});
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    for (const auto& name : objective_names()) EXPECT_NE(m.find(name), std::string::npos) << m;
    EXPECT_NE(m.find("train.loss"), std::string::npos) << m;
  }
}

TEST(Objective, APenaltyRefusesBatchNormInTheCriticAndSuggestsLayerNorm) {
  for (const char* loss : {"wgan-gp", "dragan", "r1"})
    expect_gan_error(
        with("dcgan", {{"train.loss", loss}}),
        {"model.discriminator", std::string("train.loss = ") + loss, "layer 3", "batch norm", "\"ln\""});
}

TEST(Objective, WganWithoutClippingIsRefused) {
  expect_gan_error(with("dcgan", {{"train.loss", "wgan"}, {"train.clip", "0"}}),
                   {"train.clip", "clip > 0", "wgan-gp"});
}

TEST(Objective, BeganNeedsADiscriminatorThatGivesTheImageBack) {
  expect_gan_error(with("dcgan", {{"train.loss", "began"}}),
                   {"model.discriminator", "began", "auto-encoder", "28x28x1"});
}

TEST(Objective, LabelSmoothingOnlyForTheBceObjectives) {
  expect_gan_error(with("dcgan", {{"train.loss", "hinge"}, {"train.label_smoothing", "0.1"}}),
                   {"train.label_smoothing", "hinge"});
}

TEST(Objective, TheCommandLineExitsTwoNamingTheKey) {
  const std::string out = testing_cli::temp("objective_never");
  testing_cli::expect(
      testing_cli::run("train --preset dcgan --set train.loss=wgan-gp --steps 1 --out " + out), 2,
      {"model.discriminator", "\"ln\""});
  testing_cli::expect(testing_cli::run("train --preset dcgan --set train.loss=wasserstein --out " + out), 2,
                      {"train.loss", "wgan-gp", "began"});
}

}  // namespace
}  // namespace gancu
