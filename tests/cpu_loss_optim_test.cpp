// CPU objectives (gan_loss of every kind, BEGAN's L1 loss and k update) and optimizers (Adam,
// SGD, RMSprop, weight clipping).
#include <gtest/gtest.h>

#include <string>

#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// -[t log s + (1 - t) log(1 - s)], s = sigmoid(l): the textbook form, fine for moderate l.
double bce_direct(double l, double t) {
  const double s = 1 / (1 + std::exp(-l));
  return -(t * std::log(s) + (1 - t) * std::log(1 - s));
}

// f(l) of each kind written from its definition (op_types.h), and the score s(l).
double loss_direct(LossKind kind, double l, double t) {
  switch (kind) {
    case LossKind::BCE:
      return bce_direct(l, t);
    case LossKind::LeastSquares:
      return 0.5 * (l - t) * (l - t);
    case LossKind::Hinge:
      return std::max(0.0, 1 - t * l);
    case LossKind::Linear:
      return -t * l;
  }
  return 0;
}
double score_direct(LossKind kind, double l) {
  return kind == LossKind::BCE ? 1 / (1 + std::exp(-l)) : l;
}

// The kinds with the targets the objectives use them with.
std::vector<LossTerm> loss_terms(float scale) {
  return {{LossKind::BCE, 1.0f, scale},          {LossKind::BCE, 0.0f, scale},
          {LossKind::BCE, 0.9f, scale},          {LossKind::LeastSquares, 1.0f, scale},
          {LossKind::LeastSquares, 0.0f, scale}, {LossKind::Hinge, 1.0f, scale},
          {LossKind::Hinge, -1.0f, scale},       {LossKind::Linear, 1.0f, scale},
          {LossKind::Linear, -1.0f, scale}};
}

std::string term_name(const LossTerm& t) {
  const char* kinds[] = {"bce", "least_squares", "hinge", "linear"};
  return std::string(kinds[int(t.kind)]) + " t=" + std::to_string(t.target) +
         " scale=" + std::to_string(t.scale);
}

TEST(CpuGanLoss, ValuesAndScoresMatchTheDefinitionsAndAccumulate) {
  CpuEnv env;
  const auto logits = randn(100003, 1, 3.0);  // several reduction parts
  for (float scale : {1.0f, 0.75f, -1.0f})
    for (const LossTerm& term : loss_terms(scale)) {
      SCOPED_TRACE(term_name(term));
      double loss = 0, score = 0;
      for (double l : logits) {
        loss += loss_direct(term.kind, l, double(term.target));
        score += score_direct(term.kind, l);
      }
      loss = double(scale) * loss / double(logits.size());
      score /= double(logits.size());
      double loss_sum = 1.0, score_sum = 2.0;  // accumulate onto what is there
      ops::gan_loss<double>(env.ex, &term, int64_t(logits.size()), logits.data(), nullptr, &loss_sum,
                            &score_sum);
      EXPECT_NEAR(loss_sum, 1.0 + loss, 1e-12 * (1 + std::abs(loss)));
      EXPECT_NEAR(score_sum, 2.0 + score, 1e-12);
      ops::gan_loss<double>(env.ex, &term, int64_t(logits.size()), logits.data(), nullptr, nullptr, nullptr);
    }
}

// The original minimax generator loss is BCE with t = 0 and scale -1: mean log(1 - sigmoid(l)).
TEST(CpuGanLoss, MinimaxGeneratorLossIsNegatedBceWithTargetZero) {
  CpuEnv env;
  const auto logits = randn(257, 3, 2.0);
  double want = 0;
  for (double l : logits) want += std::log(1 - 1 / (1 + std::exp(-l)));
  want /= double(logits.size());
  double loss = 0;
  const LossTerm minimax{LossKind::BCE, 0.0f, -1.0f};
  ops::gan_loss<double>(env.ex, &minimax, int64_t(logits.size()), logits.data(), nullptr, &loss, nullptr);
  EXPECT_NEAR(loss, want, 1e-13);
  EXPECT_LT(loss, 0.0);
}

TEST(CpuGanLoss, LargeBceLogitsStayFinite) {
  CpuEnv env;
  const std::vector<float> logits = {100.0f, -100.0f, 1000.0f, -1000.0f};
  std::vector<float> d(4);
  float loss = 0, prob = 0;
  const LossTerm smoothed{LossKind::BCE, 0.9f, 1.0f};
  ops::gan_loss<float>(env.ex, &smoothed, 4, logits.data(), d.data(), &loss, &prob);
  // Per element: max(l, 0) - 0.9 l (+ a log1p term below 1e-40): 10, 90, 100, 900.
  EXPECT_NEAR(loss, (10.0 + 90.0 + 100.0 + 900.0) / 4, 1e-3);
  EXPECT_NEAR(prob, 0.5, 1e-7);
  EXPECT_NEAR(d[0], (1.0 - 0.9) / 4, 1e-7);
  EXPECT_NEAR(d[1], (0.0 - 0.9) / 4, 1e-7);
  for (float v : d) EXPECT_TRUE(std::isfinite(v));
  const std::vector<double> dl = {100.0, -100.0};
  double dloss = 0;
  const LossTerm real{LossKind::BCE, 1.0f, 1.0f};
  ops::gan_loss<double>(env.ex, &real, 2, dl.data(), nullptr, &dloss, nullptr);
  EXPECT_NEAR(dloss, 50.0, 1e-12) << "-100 with target 1 costs 100, +100 costs ~4e-44";
  EXPECT_GT(dloss, 50.0 - 1e-12);
}

// d(logits) against central differences of the scaled loss. Logits near the hinge's kink are
// moved away from it (the difference quotient straddles the kink there).
TEST(CpuGanLoss, GradientMatchesFiniteDifferences) {
  CpuEnv env;
  const int64_t n = 37;
  for (const LossTerm& term : loss_terms(-0.75f)) {
    SCOPED_TRACE(term_name(term));
    auto logits = randn(size_t(n), 2, 2.0);
    for (double& l : logits)
      if (std::abs(1 - double(term.target) * l) < 1e-3) l += 0.01;
    auto loss = [&] {
      double l = 0;
      ops::gan_loss<double>(env.ex, &term, n, logits.data(), nullptr, &l, nullptr);
      return l;
    };
    std::vector<double> d(size_t(n), 5.0);
    ops::gan_loss<double>(env.ex, &term, n, logits.data(), d.data(), nullptr, nullptr);
    EXPECT_LT(rel_err(d, numeric_grad(logits, loss)), kGradTol);
  }
}

TEST(CpuGanLoss, HingeKinkHasSlopeZeroAndTheFlatSideNoGradient) {
  CpuEnv env;
  const std::vector<double> logits = {1.0, 2.0, 0.5, -1.0};  // t = 1: kink, flat, active, active
  std::vector<double> d(4, 9.0);
  double loss = 0;
  const LossTerm hinge{LossKind::Hinge, 1.0f, 1.0f};
  ops::gan_loss<double>(env.ex, &hinge, 4, logits.data(), d.data(), &loss, nullptr);
  EXPECT_EQ(d, (std::vector<double>{0.0, 0.0, -0.25, -0.25}));
  EXPECT_DOUBLE_EQ(loss, (0.0 + 0.0 + 0.5 + 2.0) / 4);
}

// ---- BEGAN ----------------------------------------------------------------------------------

TEST(CpuL1Reconstruction, LossMatchesTheMeanAndGradientsMatchFiniteDifferences) {
  CpuEnv env;
  const int64_t batch = 5, per = 13, n = batch * per;
  auto x = randn(size_t(n), 1), recon = randn(size_t(n), 2);
  const double k = 0.3;
  const float scale = -1.5f;
  double want = 0;
  for (int64_t i = 0; i < n; ++i) want += std::abs(recon[size_t(i)] - x[size_t(i)]);
  want /= double(n);
  double loss_out = 42.0, loss_sum = 1.0;
  std::vector<double> drecon(size_t(n), 7.0), dx(size_t(n), 7.0);
  ops::l1_reconstruction_loss<double>(env.ex, batch, per, x.data(), recon.data(), scale, &k, drecon.data(),
                                      dx.data(), false, &loss_out, &loss_sum);
  EXPECT_NEAR(loss_out, want, 1e-14) << "loss_out is overwritten, unscaled";
  EXPECT_NEAR(loss_sum, 1.0 + want, 1e-14) << "loss_sum accumulates, unscaled";
  // The gradients are those of s L with s = scale * k.
  auto objective = [&] {
    double l = 0;
    ops::l1_reconstruction_loss<double>(env.ex, batch, per, x.data(), recon.data(), scale, &k, nullptr,
                                        nullptr, false, &l, nullptr);
    return double(scale) * k * l;
  };
  EXPECT_LT(rel_err(drecon, numeric_grad(recon, objective)), kGradTol);
  EXPECT_LT(rel_err(dx, numeric_grad(x, objective)), kGradTol);

  // Without k the scale alone; dx accumulates when asked; nulls are skipped.
  std::vector<double> drecon1(static_cast<size_t>(n)), dx_acc = randn(size_t(n), 3);
  const std::vector<double> dx0 = dx_acc;
  ops::l1_reconstruction_loss<double>(env.ex, batch, per, x.data(), recon.data(), scale, nullptr,
                                      drecon1.data(), dx_acc.data(), true, nullptr, nullptr);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(drecon1[size_t(i)], drecon[size_t(i)] / k, 1e-15);
    EXPECT_NEAR(dx_acc[size_t(i)], dx0[size_t(i)] - drecon1[size_t(i)], 1e-15);
  }
}

TEST(CpuL1Reconstruction, EqualValuesGetZeroGradient) {
  CpuEnv env;
  const std::vector<float> x = {1.0f, 2.0f, 3.0f}, recon = {1.0f, 2.5f, 2.0f};
  std::vector<float> drecon(3, 9.0f), dx(3, 9.0f);
  float loss = 0;
  ops::l1_reconstruction_loss<float>(env.ex, 1, 3, x.data(), recon.data(), 3.0f, nullptr, drecon.data(),
                                     dx.data(), false, &loss, nullptr);
  EXPECT_EQ(drecon, (std::vector<float>{0.0f, 1.0f, -1.0f}));  // sign(0) = 0; 3 * sign / 3
  EXPECT_EQ(dx, (std::vector<float>{0.0f, -1.0f, 1.0f}));
  EXPECT_FLOAT_EQ(loss, 0.5f);
}

TEST(CpuBeganUpdate, MovesKTowardEquilibriumClampedToTheUnitInterval) {
  CpuEnv env;
  struct Case {
    double k, real, fake, want_k;
  } cases[] = {
      {0.5, 0.2, 0.05, 0.5 + double(0.01f) * (0.5 * 0.2 - 0.05)},  // inside
      {0.0, 0.1, 0.9, 0.0},                                        // would go below 0
      {0.999, 2.0, 0.0, 1.0},                                      // would go above 1
  };
  for (const Case& c : cases) {
    double k = c.k, conv = 1.0;
    ops::began_update<double>(env.ex, &k, &c.real, &c.fake, 0.5f, 0.01f, &conv);
    EXPECT_NEAR(k, c.want_k, 1e-15);
    EXPECT_NEAR(conv, 1.0 + c.real + std::abs(0.5 * c.real - c.fake), 1e-15)
        << "M = L_real + |gamma L_real - L_fake|";
    ops::began_update<double>(env.ex, &k, &c.real, &c.fake, 0.5f, 0.0f, nullptr);  // lambda 0: k stays
    EXPECT_NEAR(k, c.want_k, 1e-15);
  }
}

// PyTorch's Adam, one scalar at a time, written out independently of the op.
struct ScalarAdam {
  double p, m = 0, v = 0;
  void step(double g, const AdamHyper& h, int t) {
    g += double(h.weight_decay) * p;
    m = double(h.beta1) * m + (1 - double(h.beta1)) * g;
    v = double(h.beta2) * v + (1 - double(h.beta2)) * g * g;
    const double bc1 = 1 - std::pow(double(h.beta1), t), bc2 = 1 - std::pow(double(h.beta2), t);
    p -= double(h.lr) / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + double(h.eps));
  }
};

TEST(CpuAdam, MatchesScalarReimplementationOverSteps) {
  CpuEnv env;
  const size_t n = 1000;
  const AdamHyper h{1e-2f, 0.5f, 0.999f, 1e-8f, 0.01f};
  const std::vector<double> p0 = randn(n, 1);
  std::vector<double> p = p0, m(n, 0.0), v(n, 0.0);
  std::vector<float> pf = cast<float>(p), mf(n, 0.0f), vf(n, 0.0f);
  std::vector<ScalarAdam> ref;
  for (double x : p) ref.push_back(ScalarAdam{x});
  int64_t t = 0, tf = 0;
  for (int step = 1; step <= 6; ++step) {
    const auto g = randn(n, 100 + step);
    const auto gf = cast<float>(g);
    ops::adam_step<double>(env.ex, int64_t(n), p.data(), g.data(), m.data(), v.data(), &h, &t);
    ops::adam_step<float>(env.ex, int64_t(n), pf.data(), gf.data(), mf.data(), vf.data(), &h, &tf);
    for (size_t i = 0; i < n; ++i) ref[i].step(g[i], h, step);
    EXPECT_EQ(t, step);
    EXPECT_EQ(tf, step);
  }
  std::vector<double> rp(n), rm(n), rv(n);
  for (size_t i = 0; i < n; ++i) rp[i] = ref[i].p, rm[i] = ref[i].m, rv[i] = ref[i].v;
  EXPECT_LT(rel_err(p, rp), 1e-13);
  EXPECT_LT(rel_err(m, rm), 1e-13);
  EXPECT_LT(rel_err(v, rv), 1e-13);
  EXPECT_LT(rel_err(pf, rp), 1e-6);
  // Six steps of lr 1e-2 must have moved the parameters.
  EXPECT_GT(rel_err(p, p0), 1e-3);
}

TEST(CpuSgd, MatchesScalarReimplementationWithAndWithoutMomentum) {
  CpuEnv env;
  const size_t n = 777;
  for (float momentum : {0.0f, 0.9f}) {
    const SgdHyper h{0.05f, momentum, 0.001f};
    std::vector<double> p = randn(n, 1), buf(n, 0.0), rp = p, rbuf(n, 0.0);
    for (int step = 0; step < 4; ++step) {
      const auto g = randn(n, 10 + step);
      ops::sgd_step<double>(env.ex, int64_t(n), p.data(), g.data(), momentum != 0 ? buf.data() : nullptr, &h);
      for (size_t i = 0; i < n; ++i) {
        double gi = g[i] + double(h.weight_decay) * rp[i];
        if (momentum != 0) gi = rbuf[i] = double(h.momentum) * rbuf[i] + gi;
        rp[i] -= double(h.lr) * gi;
      }
    }
    EXPECT_LT(rel_err(p, rp), 1e-14) << "momentum " << momentum;
    if (momentum != 0) EXPECT_LT(rel_err(buf, rbuf), 1e-14);
  }
}

// PyTorch's RMSprop (alpha, eps outside the square root, L2 weight decay), written out.
TEST(CpuRmsprop, MatchesScalarReimplementationOverSteps) {
  CpuEnv env;
  const size_t n = 1001;
  for (float wd : {0.0f, 0.01f}) {
    const RmspropHyper h{1e-2f, 0.9f, 1e-8f, wd};
    std::vector<double> p = randn(n, 1), sq(n, 0.0), rp = p, rsq(n, 0.0);
    std::vector<float> pf = cast<float>(p), sqf(n, 0.0f);
    int64_t t = 3, tf = 0;
    for (int step = 0; step < 5; ++step) {
      const auto g = randn(n, 20 + step);
      const auto gf = cast<float>(g);
      ops::rmsprop_step<double>(env.ex, int64_t(n), p.data(), g.data(), sq.data(), &h, &t);
      ops::rmsprop_step<float>(env.ex, int64_t(n), pf.data(), gf.data(), sqf.data(), &h, &tf);
      for (size_t i = 0; i < n; ++i) {
        const double gi = g[i] + double(h.weight_decay) * rp[i];
        rsq[i] = double(h.alpha) * rsq[i] + (1 - double(h.alpha)) * gi * gi;
        rp[i] -= double(h.lr) * gi / (std::sqrt(rsq[i]) + double(h.eps));
      }
    }
    EXPECT_EQ(t, 8) << "t counts the steps";
    EXPECT_EQ(tf, 5);
    EXPECT_LT(rel_err(p, rp), 1e-14) << "wd " << wd;
    EXPECT_LT(rel_err(sq, rsq), 1e-14);
    EXPECT_LT(rel_err(pf, rp), 1e-6);
  }
}

TEST(CpuClampValues, ClipsToTheIntervalAndKeepsNaN) {
  CpuEnv env;
  std::vector<float> x = {-0.5f, -0.01f, 0.0f, 0.005f, 0.01f, 3.0f, std::numeric_limits<float>::quiet_NaN()};
  ops::clamp_values<float>(env.ex, int64_t(x.size()), x.data(), -0.01f, 0.01f);
  const std::vector<float> want = {-0.01f, -0.01f, 0.0f, 0.005f, 0.01f, 0.01f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(x[i], want[i]) << i;
  EXPECT_TRUE(std::isnan(x.back())) << "NaN stays NaN, as torch.clamp";
  auto big = randn(70001, 4);  // several parallel blocks
  ops::clamp_values<double>(env.ex, int64_t(big.size()), big.data(), -0.5f, 0.25f);
  for (double v : big) ASSERT_TRUE(v >= -0.5 && v <= 0.25);
}

}  // namespace
}  // namespace gancu::test
