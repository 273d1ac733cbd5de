// CPU activation, dropout and the small utilities.
#include <gtest/gtest.h>

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

TEST(CpuUtil, FillAddIntoAndCounter) {
  CpuEnv env;
  std::vector<float> a(70001, 1.0f);
  ops::fill<float>(env.ex, int64_t(a.size()), a.data(), 2.5f);
  EXPECT_EQ(a, std::vector<float>(a.size(), 2.5f));
  const auto src = cast<float>(randn(a.size(), 1));
  ops::add_into<float>(env.ex, int64_t(a.size()), src.data(), a.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], 2.5f + src[i]);
  int64_t counter = 41;
  ops::increment_counter(env.ex, &counter);
  ops::increment_counter(env.ex, &counter);
  EXPECT_EQ(counter, 43);
}

}  // namespace
}  // namespace gancu::test
