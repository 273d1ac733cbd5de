// CPU binary cross-entropy with logits, Adam and SGD.
#include <gtest/gtest.h>

#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// -[t log s + (1 - t) log(1 - s)], s = sigmoid(l): the textbook form, fine for moderate l.
double bce_direct(double l, double t) {
  const double s = 1 / (1 + std::exp(-l));
  return -(t * std::log(s) + (1 - t) * std::log(1 - s));
}

TEST(CpuBce, ValuesMatchTheDirectFormulaAndAccumulate) {
  CpuEnv env;
  const auto logits = randn(1001, 1, 3.0);
  for (float t : {0.0f, 1.0f, 0.9f}) {
    double loss = 0, prob = 0;
    for (double l : logits) {
      loss += bce_direct(l, double(t));
      prob += 1 / (1 + std::exp(-l));
    }
    loss /= double(logits.size());
    prob /= double(logits.size());
    double loss_sum = 1.0, prob_sum = 2.0;  // accumulate onto what is there
    ops::bce_with_logits<double>(env.ex, int64_t(logits.size()), logits.data(), t, 1.0f, nullptr, &loss_sum,
                                 &prob_sum);
    EXPECT_NEAR(loss_sum, 1.0 + loss, 1e-12) << "t=" << t;
    EXPECT_NEAR(prob_sum, 2.0 + prob, 1e-12);
    ops::bce_with_logits<double>(env.ex, int64_t(logits.size()), logits.data(), t, 1.0f, nullptr, nullptr,
                                 nullptr);
  }
}

TEST(CpuBce, LargeLogitsStayFinite) {
  CpuEnv env;
  const std::vector<float> logits = {100.0f, -100.0f, 1000.0f, -1000.0f};
  std::vector<float> d(4);
  float loss = 0, prob = 0;
  ops::bce_with_logits<float>(env.ex, 4, logits.data(), 0.9f, 1.0f, d.data(), &loss, &prob);
  // Per element: max(l, 0) - 0.9 l (+ a log1p term below 1e-40): 10, 90, 100, 900.
  EXPECT_NEAR(loss, (10.0 + 90.0 + 100.0 + 900.0) / 4, 1e-3);
  EXPECT_NEAR(prob, 0.5, 1e-7);
  EXPECT_NEAR(d[0], (1.0 - 0.9) / 4, 1e-7);
  EXPECT_NEAR(d[1], (0.0 - 0.9) / 4, 1e-7);
  for (float v : d) EXPECT_TRUE(std::isfinite(v));
  const std::vector<double> dl = {100.0, -100.0};
  double dloss = 0;
  ops::bce_with_logits<double>(env.ex, 2, dl.data(), 1.0f, 1.0f, nullptr, &dloss, nullptr);
  EXPECT_NEAR(dloss, 50.0, 1e-12) << "-100 with target 1 costs 100, +100 costs ~4e-44";
  EXPECT_GT(dloss, 50.0 - 1e-12);
}

TEST(CpuBce, GradientMatchesFiniteDifferences) {
  CpuEnv env;
  const int64_t n = 37;
  const float scale = 0.75f, target = 0.9f;
  auto logits = randn(size_t(n), 2, 2.0);
  auto loss = [&] {
    double l = 0;
    ops::bce_with_logits<double>(env.ex, n, logits.data(), target, scale, nullptr, &l, nullptr);
    return double(scale) * l;
  };
  std::vector<double> d(size_t(n), 5.0);
  ops::bce_with_logits<double>(env.ex, n, logits.data(), target, scale, d.data(), nullptr, nullptr);
  EXPECT_LT(rel_err(d, numeric_grad(logits, loss)), kGradTol);
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
    ops::adam_step<double>(env.ex, int64_t(n), p.data(), g.data(), m.data(), v.data(), h, &t);
    ops::adam_step<float>(env.ex, int64_t(n), pf.data(), gf.data(), mf.data(), vf.data(), h, &tf);
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
      ops::sgd_step<double>(env.ex, int64_t(n), p.data(), g.data(), momentum != 0 ? buf.data() : nullptr, h);
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

}  // namespace
}  // namespace gancu::test
