// CPU gradient-penalty ops: WGAN-GP's interpolation and DRAGAN's perturbation (their Philox draws,
// which element of the stream each one is, and the output formula), and the penalty itself (its
// value and norm sums against direct loops, its gradient v against finite differences in double).
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::test {
namespace {

constexpr uint64_t kSeed = 1234;

TEST(CpuInterpolateSamples, EachSampleMixesWithItsOwnDrawOfThePenaltyStream) {
  CpuEnv env;
  const int64_t batch = 37, per = 11, step = 5;
  const auto a = randn(size_t(batch * per), 1), b = randn(size_t(batch * per), 2);
  std::vector<double> out(a.size(), NAN), eps(size_t(batch), NAN);
  ops::interpolate_samples<double>(env.ex, batch, per, a.data(), b.data(), out.data(), eps.data(), kSeed,
                                   kStreamPenalty, &step);
  for (int64_t i = 0; i < batch; ++i) {
    // eps_i is element i of (seed, stream, step), uniform in [0, 1).
    const float want = philox_uniform(kSeed, kStreamPenalty, uint64_t(step), uint64_t(i), 0.0f, 1.0f);
    ASSERT_EQ(eps[size_t(i)], double(want)) << i;
    ASSERT_GE(eps[size_t(i)], 0.0);
    ASSERT_LT(eps[size_t(i)], 1.0);
    // One eps for every value of the sample.
    for (int64_t j = i * per; j < (i + 1) * per; ++j)
      ASSERT_NEAR(out[size_t(j)], eps[size_t(i)] * a[size_t(j)] + (1 - eps[size_t(i)]) * b[size_t(j)], 4e-15)
          << "sample " << i << " value " << j;
  }
  // The draws vary over the batch and cover [0, 1) roughly evenly.
  double mean = 0;
  for (double e : eps) mean += e / double(batch);
  EXPECT_GT(mean, 0.3);
  EXPECT_LT(mean, 0.7);

  // Another step draws other numbers; the same step the same ones; eps_out may be null; the float
  // path draws the same eps.
  const int64_t next = 6;
  std::vector<double> out2(a.size()), eps2(static_cast<size_t>(batch)), out3(a.size());
  ops::interpolate_samples<double>(env.ex, batch, per, a.data(), b.data(), out2.data(), eps2.data(), kSeed,
                                   kStreamPenalty, &next);
  EXPECT_NE(eps2, eps);
  ops::interpolate_samples<double>(env.ex, batch, per, a.data(), b.data(), out3.data(), nullptr, kSeed,
                                   kStreamPenalty, &step);
  EXPECT_EQ(out3, out);
  const auto af = cast<float>(a), bf = cast<float>(b);
  std::vector<float> outf(a.size()), epsf(static_cast<size_t>(batch));
  ops::interpolate_samples<float>(env.ex, batch, per, af.data(), bf.data(), outf.data(), epsf.data(), kSeed,
                                  kStreamPenalty, &step);
  EXPECT_EQ(cast<double>(epsf), eps);
  EXPECT_LT(rel_err(outf, out), 1e-6);
}

double unbiased_std(const std::vector<double>& x) {
  double mean = 0, sq = 0;
  for (double v : x) mean += v / double(x.size());
  for (double v : x) sq += (v - mean) * (v - mean);
  return std::sqrt(sq / double(x.size() - 1));
}

TEST(CpuPerturbSamples, AddsScaledUniformNoiseFromTheDocumentedElements) {
  CpuEnv env;
  const int64_t batch = 9, per = 701, step = 3;  // 6309 values: several Philox blocks per sample
  auto x = randn(size_t(batch * per), 4, 0.7);
  for (double& v : x) v += 0.3;  // a mean away from zero
  const float spread = 0.5f;
  std::vector<double> out(x.size(), NAN), alpha(size_t(batch), NAN), u(x.size(), NAN);
  ops::perturb_samples<double>(env.ex, batch, per, x.data(), spread, out.data(), alpha.data(), u.data(),
                               kSeed, kStreamPenalty, &step);
  const double sigma = unbiased_std(x);
  double u_mean = 0;
  for (int64_t i = 0; i < batch; ++i) {
    // alpha_i: element i; u_j: element batch + j, j over the whole batch.
    ASSERT_EQ(alpha[size_t(i)],
              double(philox_uniform(kSeed, kStreamPenalty, uint64_t(step), uint64_t(i), 0, 1)));
    ASSERT_GE(alpha[size_t(i)], 0.0);
    ASSERT_LT(alpha[size_t(i)], 1.0);
    for (int64_t j = i * per; j < (i + 1) * per; ++j) {
      const double uj = u[size_t(j)];
      ASSERT_EQ(uj, double(philox_uniform(kSeed, kStreamPenalty, uint64_t(step), uint64_t(batch + j), 0, 1)))
          << j;
      ASSERT_GE(uj, 0.0);
      ASSERT_LT(uj, 1.0);
      u_mean += uj / double(x.size());
      ASSERT_NEAR(out[size_t(j)], x[size_t(j)] + (1 - alpha[size_t(i)]) * double(spread) * sigma * uj, 1e-14)
          << j;
    }
  }
  EXPECT_NEAR(u_mean, 0.5, 0.02);

  // Without the draw outputs, the same points; in place (out = x) too, since the deviation is
  // taken before anything is written.
  std::vector<double> out2(x.size()), inplace = x;
  ops::perturb_samples<double>(env.ex, batch, per, x.data(), spread, out2.data(), nullptr, nullptr, kSeed,
                               kStreamPenalty, &step);
  EXPECT_EQ(out2, out);
  ops::perturb_samples<double>(env.ex, batch, per, inplace.data(), spread, inplace.data(), nullptr, nullptr,
                               kSeed, kStreamPenalty, &step);
  EXPECT_EQ(inplace, out);
}

// A constant batch has no spread: the points are the samples themselves.
TEST(CpuPerturbSamples, ConstantBatchIsNotMoved) {
  CpuEnv env;
  const std::vector<float> x(64, 0.25f);
  std::vector<float> out(64);
  const int64_t step = 0;
  ops::perturb_samples<float>(env.ex, 8, 8, x.data(), 0.5f, out.data(), nullptr, nullptr, kSeed,
                              kStreamPenalty, &step);
  EXPECT_EQ(out, x);
}

// P = w mean_i (||g_i|| - 1)^2 or w mean_i ||g_i||^2 against direct loops; v against central
// differences of P (with respect to every element of g), for both kinds; the sums accumulate.
TEST(CpuGradientPenalty, ValueByDirectLoopsAndGradientByFiniteDifferences) {
  CpuEnv env;
  const int64_t batch = 6, per = 7;
  const float w = 10.0f;
  for (PenaltyKind kind : {PenaltyKind::TwoSided, PenaltyKind::Squared}) {
    SCOPED_TRACE(kind == PenaltyKind::TwoSided ? "two-sided" : "squared");
    auto g = randn(size_t(batch * per), 11, 0.5);
    double want = 0, norms = 0;
    for (int64_t i = 0; i < batch; ++i) {
      double sq = 0;
      for (int64_t j = 0; j < per; ++j) sq += g[size_t(i * per + j)] * g[size_t(i * per + j)];
      const double n = std::sqrt(sq);
      want += kind == PenaltyKind::TwoSided ? (n - 1) * (n - 1) : sq;
      norms += n;
    }
    want *= double(w) / double(batch);
    norms /= double(batch);
    std::vector<double> v(g.size(), NAN);
    double penalty = 2.0, norm_sum = 3.0;
    ops::gradient_penalty<double>(env.ex, kind, batch, per, g.data(), w, v.data(), &penalty, &norm_sum);
    EXPECT_NEAR(penalty, 2.0 + want, 1e-13);
    EXPECT_NEAR(norm_sum, 3.0 + norms, 1e-14);
    auto value = [&] {
      std::vector<double> scratch(g.size());
      double p = 0;
      ops::gradient_penalty<double>(env.ex, kind, batch, per, g.data(), w, scratch.data(), &p, nullptr);
      return p;
    };
    EXPECT_LT(rel_err(v, numeric_grad(g, value)), kGradTol);
  }
}

// The two-sided penalty's gradient is 0 for a sample whose gradient is exactly 0 (the norm's
// derivative is undefined there; PyTorch's norm backward gives 0 too).
TEST(CpuGradientPenalty, ZeroGradientSampleGetsZeroTangent) {
  CpuEnv env;
  std::vector<float> g = {0, 0, 0, 3, 4, 0};  // norms 0 and 5
  std::vector<float> v(6, NAN);
  float penalty = 0, norms = 0;
  ops::gradient_penalty<float>(env.ex, PenaltyKind::TwoSided, 2, 3, g.data(), 1.0f, v.data(), &penalty,
                               &norms);
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_EQ(v[2], 0.0f);
  // 2 (5 - 1) / 5 g / 2 = 0.8 g
  EXPECT_FLOAT_EQ(v[3], 0.8f * 3);
  EXPECT_FLOAT_EQ(v[4], 0.8f * 4);
  EXPECT_FLOAT_EQ(penalty, (1.0f + 16.0f) / 2);
  EXPECT_FLOAT_EQ(norms, 2.5f);
}

}  // namespace
}  // namespace gancu::test
