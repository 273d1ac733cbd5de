// CPU activation (with the second-order part of its tangent's backward), dropout and the small
// utilities.
#include <gtest/gtest.h>

#include <string>

#include "cpu_test_util.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::test {
namespace {

TEST(CpuActivation, ForwardMatchesFormulasInPlaceToo) {
  CpuEnv env;
  // Enough values for several parallel blocks, including large |x| for tanh/sigmoid.
  auto x = randn(100003, 1, 4.0);
  x[0] = 800.0;
  x[1] = -800.0;
  for (const Activation& act : all_activations()) {
    SCOPED_TRACE(act_name(act.kind));
    std::vector<double> ref(x.size()), y(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = act_ref(x[i], act);
    ops::activation_forward<double>(env.ex, int64_t(x.size()), x.data(), y.data(), act);
    EXPECT_LT(rel_err(y, ref), 1e-15);
    for (double v : y) ASSERT_TRUE(std::isfinite(v));
    std::vector<double> inplace = x;
    ops::activation_forward<double>(env.ex, int64_t(x.size()), inplace.data(), inplace.data(), act);
    EXPECT_EQ(inplace, y);
  }
}

// The float path's tanh is its own vectorizable implementation: within 4 ulp of the exact value
// (relative 4 * 2^-24 ~ 2.4e-7) everywhere, exactly odd, and saturating to +-1 without NaN.
TEST(CpuActivation, FloatTanhIsAccurateToAFewUlp) {
  CpuEnv env;
  std::vector<float> x;
  for (double v = -12.0; v <= 12.0; v += 1.0 / 4096) x.push_back(float(v));
  for (float v = 1e-30f; v < 1.0f; v *= 1.37f) {
    x.push_back(v);
    x.push_back(-v);
  }
  for (float v : {0.0f, -0.0f, 0.55f, -0.55f, 0.5499999f, 1e4f, -1e4f, 3e38f, -3e38f}) x.push_back(v);
  std::vector<float> y(x.size());
  ops::activation_forward<float>(env.ex, int64_t(x.size()), x.data(), y.data(), Activation{Act::Tanh});
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::tanh(double(x[i]));
    ASSERT_TRUE(std::isfinite(y[i])) << x[i];
    ASSERT_LE(std::abs(y[i]), 1.0f);
    worst = std::max(worst, std::abs(double(y[i]) - want) / std::max(std::abs(want), 1e-38));
  }
  EXPECT_LT(worst, 4.0 / 16777216.0);
  for (size_t i = 0; i + 1 < x.size(); ++i)
    if (x[i] == -x[i + 1]) EXPECT_EQ(y[i], -y[i + 1]);
}

TEST(CpuActivation, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  const size_t n = 257;
  for (const Activation& act : all_activations()) {
    SCOPED_TRACE(act_name(act.kind));
    auto x = randn(n, 5, 2.0);
    for (double& v : x)
      if (std::abs(v) < 1e-3) v = 0.5;  // keep finite differences off the relu kink
    const auto R = randn(n, 6);
    auto loss = [&] {
      std::vector<double> y(n);
      ops::activation_forward<double>(env.ex, int64_t(n), x.data(), y.data(), act);
      return dot(R, y);
    };
    std::vector<double> y(n), dx(n, 3.0);
    ops::activation_forward<double>(env.ex, int64_t(n), x.data(), y.data(), act);
    ops::activation_backward<double>(env.ex, int64_t(n), y.data(), R.data(), dx.data(), false, act);
    EXPECT_LT(rel_err(dx, numeric_grad(x, loss)), kGradTol);
    const auto dx0 = randn(n, 7);
    std::vector<double> acc = dx0;
    ops::activation_backward<double>(env.ex, int64_t(n), y.data(), R.data(), acc.data(), true, act);
    EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-15) << "accumulate_dx adds";
    ops::activation_backward<double>(env.ex, int64_t(n), y.data(), R.data(), nullptr, false, act);  // no-op
  }
}

// The second-order part of a tangent's backward: with y = act(z) and ty = act'(z) tz, dz must be
// the derivative with respect to z of <dy, act(z)> + <dty, act'(z) tz> (central differences in z;
// act'(z) is taken as the op's own activation_backward of act(z)). Also without dy, and in place.
TEST(CpuActivation, SecondOrderIsTheDerivativeOfTheTangentsPairing) {
  CpuEnv env;
  const size_t n = 301;
  for (const Activation& act : all_activations())
    for (bool with_dy : {true, false}) {
      SCOPED_TRACE(std::string(act_name(act.kind)) + (with_dy ? " with dy" : " without dy"));
      auto z = randn(n, 15, 2.0);
      for (double& v : z)
        if (std::abs(v) < 1e-3) v = 0.5;  // off the relu kink
      const auto tz = randn(n, 16), dy = randn(n, 17), dty = randn(n, 18);
      auto tangent_at = [&](const std::vector<double>& y) {
        std::vector<double> ty(n);
        ops::activation_backward<double>(env.ex, int64_t(n), y.data(), tz.data(), ty.data(), false, act);
        return ty;
      };
      auto pairing = [&] {
        std::vector<double> y(n);
        ops::activation_forward<double>(env.ex, int64_t(n), z.data(), y.data(), act);
        return (with_dy ? dot(dy, y) : 0.0) + dot(dty, tangent_at(y));
      };
      std::vector<double> y(n), dz(n, NAN);
      ops::activation_forward<double>(env.ex, int64_t(n), z.data(), y.data(), act);
      const auto ty = tangent_at(y);
      ops::activation_second_order<double>(env.ex, int64_t(n), y.data(), ty.data(), dty.data(),
                                           with_dy ? dy.data() : nullptr, dz.data(), act);
      const auto fd = numeric_grad(z, pairing);
      if (!with_dy && (act.kind == Act::None || act.kind == Act::ReLU || act.kind == Act::LeakyReLU)) {
        EXPECT_EQ(dz, std::vector<double>(n, 0.0)) << "piecewise linear: no second-order term";
        EXPECT_LT(dot(fd, fd), 1e-12);
        continue;
      }
      EXPECT_LT(rel_err(dz, fd), kGradTol);
      if (with_dy) {  // dz may overwrite dy
        auto inplace = dy;
        ops::activation_second_order<double>(env.ex, int64_t(n), y.data(), ty.data(), dty.data(),
                                             inplace.data(), inplace.data(), act);
        EXPECT_EQ(inplace, dz);
      }
    }
}

// A dead ReLU unit (y = 0) passes a zero gradient even when its dy is inf or NaN, as PyTorch's
// threshold_backward does: each backward with the activation fused (elementwise, the linear
// layer's bias sum, batch norm) must stay finite. The CUDA twins are held to the same outputs.
TEST(CpuActivation, DeadReluUnitsPassZeroForNonFiniteGradients) {
  CpuEnv env;
  const Activation relu{Act::ReLU, 0.0};
  auto poison_dead = [](const std::vector<double>& y, std::vector<double> dy) {
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] == 0.0) dy[i] = i % 2 ? HUGE_VAL : std::nan("");
    return dy;
  };
  auto all_finite = [](const std::vector<double>& v) {
    for (double e : v)
      if (!std::isfinite(e)) return false;
    return true;
  };
  const int batch = 40, in = 9, out = 13;
  const auto x = randn(size_t(batch) * in, 41), w = randn(size_t(out) * in, 42), b = randn(size_t(out), 43);
  std::vector<double> y(size_t(batch) * out);
  ops::linear_forward<double>(env.ex, LinearDims{batch, in, out}, x.data(), w.data(), b.data(), y.data(),
                              relu);
  auto dy = poison_dead(y, randn(y.size(), 44));
  ASSERT_FALSE(all_finite(dy)) << "the test needs dead units";
  std::vector<double> dact(y.size());
  ops::activation_backward<double>(env.ex, int64_t(y.size()), y.data(), dy.data(), dact.data(), false, relu);
  EXPECT_TRUE(all_finite(dact)) << "activation backward";
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] == 0.0) EXPECT_EQ(dact[i], 0.0);

  std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
  auto dyl = dy;
  ops::linear_backward<double>(env.ex, LinearDims{batch, in, out}, x.data(), w.data(), y.data(), dyl.data(),
                               dx.data(), false, dw.data(), db.data(), relu);
  EXPECT_TRUE(all_finite(dx) && all_finite(dw) && all_finite(db)) << "linear backward";

  const BatchNormDims bn{batch, out};
  const size_t C = out;
  std::vector<double> gamma(C, 1.2), beta(C, 0.1), rm(C, 0.0), rv(C, 1.0), sm(C), si(C), ybn(y.size());
  const auto xbn = randn(y.size(), 46);
  ops::batchnorm_forward<double>(env.ex, bn, BatchNormMode::Train, xbn.data(), gamma.data(), beta.data(),
                                 rm.data(), rv.data(), sm.data(), si.data(), ybn.data(), relu);
  auto dybn = poison_dead(ybn, randn(y.size(), 45));
  std::vector<double> dxbn(y.size()), dg(C), dbt(C);
  ops::batchnorm_backward<double>(env.ex, bn, xbn.data(), gamma.data(), sm.data(), si.data(), ybn.data(),
                                  dybn.data(), dxbn.data(), false, dg.data(), dbt.data(), relu);
  EXPECT_TRUE(all_finite(dxbn) && all_finite(dg) && all_finite(dbt)) << "batch norm backward";
}

TEST(CpuDropout, KeepsElementsByTheirUniformDrawAndScales) {
  CpuEnv env;
  const int64_t n = 100000, step = 17;
  const float p = 0.3f;
  const uint64_t seed = 99;
  const uint32_t stream = kStreamDropout + 2;
  const std::vector<float> x(size_t(n), 2.0f);
  std::vector<float> y(static_cast<size_t>(n));
  ops::dropout_forward<float>(env.ex, n, x.data(), y.data(), p, seed, stream, &step);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = philox_uniform(seed, stream, uint64_t(step), uint64_t(i), 0.0f, 1.0f) >= p;
    ASSERT_EQ(y[size_t(i)], keep ? 2.0f / (1.0f - p) : 0.0f) << i;
    kept += keep;
  }
  // Binomial(n, 0.7): sd = sqrt(n 0.7 0.3) ~ 145; 5 sd.
  EXPECT_NEAR(double(kept), 0.7 * n, 5 * 145.0);
  const int64_t other_step = step + 1;
  std::vector<float> y2(static_cast<size_t>(n));
  ops::dropout_forward<float>(env.ex, n, x.data(), y2.data(), p, seed, stream, &other_step);
  EXPECT_NE(y, y2) << "a new step draws a new mask";
  ops::dropout_forward<float>(env.ex, n, x.data(), y2.data(), p, seed, stream + 1, &step);
  EXPECT_NE(y, y2) << "another layer's stream draws another mask";
  std::vector<float> none(static_cast<size_t>(n));
  ops::dropout_forward<float>(env.ex, n, x.data(), none.data(), 0.0f, seed, stream, &step);
  EXPECT_EQ(none, x) << "p = 0 keeps everything unscaled";
  ops::dropout_forward<float>(env.ex, n, x.data(), none.data(), 1.0f, seed, stream, &step);
  EXPECT_EQ(none, std::vector<float>(size_t(n), 0.0f)) << "p = 1 drops everything";
}

TEST(CpuDropout, BackwardMatchesFiniteDifferencesWithTheSameMask) {
  CpuEnv env;
  const int64_t n = 203, step = 5;
  const float p = 0.4f;
  auto x = randn(size_t(n), 1);
  const auto R = randn(size_t(n), 2);
  auto loss = [&] {
    std::vector<double> y(static_cast<size_t>(n));
    ops::dropout_forward<double>(env.ex, n, x.data(), y.data(), p, 3, kStreamDropout, &step);
    return dot(R, y);
  };
  std::vector<double> dx(size_t(n), 1.0);
  ops::dropout_backward<double>(env.ex, n, R.data(), dx.data(), false, p, 3, kStreamDropout, &step);
  EXPECT_LT(rel_err(dx, numeric_grad(x, loss)), kGradTol);
  int zeros = 0;
  for (double v : dx) zeros += v == 0.0;
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, n);
  const auto dx0 = randn(size_t(n), 3);
  std::vector<double> acc = dx0;
  ops::dropout_backward<double>(env.ex, n, R.data(), acc.data(), true, p, 3, kStreamDropout, &step);
  EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-15);
}

TEST(CpuUtil, FillAddIntoAddAndCounter) {
  CpuEnv env;
  std::vector<float> a(70001, 1.0f);
  ops::fill<float>(env.ex, int64_t(a.size()), a.data(), 2.5f);
  EXPECT_EQ(a, std::vector<float>(a.size(), 2.5f));
  const auto src = cast<float>(randn(a.size(), 1));
  ops::add_into<float>(env.ex, int64_t(a.size()), src.data(), a.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], 2.5f + src[i]);
  std::vector<float> sum(a.size());
  ops::add<float>(env.ex, int64_t(a.size()), a.data(), src.data(), sum.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(sum[i], a[i] + src[i]);
  ops::add<float>(env.ex, int64_t(a.size()), a.data(), src.data(), a.data());  // y aliases a
  EXPECT_EQ(a, sum);
  int64_t counter = 41;
  ops::increment_counter(env.ex, &counter);
  ops::increment_counter(env.ex, &counter);
  EXPECT_EQ(counter, 43);
}

}  // namespace
}  // namespace gancu::test
