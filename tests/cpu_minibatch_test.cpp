// The CPU ops of the remedies against mode collapse: minibatch discrimination (forward against
// direct double loops, float against double, backward against finite differences in double, the
// result independent of the thread count and of the tiling) and minibatch standard deviation
// (forward against direct loops, backward against finite differences, accumulation, null dx);
// the vectorizable exp they use against double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/activation_math.h"
#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// o[i, a] by the definition, in double (j = i included).
std::vector<double> mbdisc_ref(const MinibatchDiscDims& d, const std::vector<double>& m) {
  const int64_t B = d.batch, A = d.kernels, C = d.dims;
  std::vector<double> o(size_t(B * d.ldo), 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t a = 0; a < A; ++a) {
      double s = 0;
      for (int64_t j = 0; j < B; ++j) {
        double dist = 0;
        for (int64_t c = 0; c < C; ++c)
          dist += std::fabs(m[size_t((i * A + a) * C + c)] - m[size_t((j * A + a) * C + c)]);
        s += std::exp(-dist);
      }
      o[size_t(i * d.ldo + a)] = s;
    }
  return o;
}

// Batch 1, 7 (one partial tile), 70 (two row tiles of j, with a remainder); ldo > kernels (the
// statistics written beside other columns, as in the layer's output).
const MinibatchDiscDims kDiscCases[] = {{1, 3, 2, 3}, {7, 5, 3, 9}, {70, 11, 5, 20}, {9, 33, 1, 40}};

TEST(CpuMinibatchDisc, ForwardMatchesTheDefinition) {
  CpuEnv env;
  for (const auto& d : kDiscCases) {
    SCOPED_TRACE(testing::Message() << "B " << d.batch << " A " << d.kernels << " C " << d.dims);
    const auto m = randn(size_t(d.batch * d.kernels * d.dims), 1, 0.3);
    const auto want = mbdisc_ref(d, m);
    std::vector<double> o(want.size(), 0.0);  // the other columns stay untouched
    ops::mbdisc_forward<double>(env.ex, d, m.data(), o.data());
    EXPECT_LT(rel_err(o, want), 1e-14);
    // Float: the vectorizable exp and float sums.
    const auto mf = cast<float>(m);
    std::vector<float> of(want.size(), 0.0f);
    ops::mbdisc_forward<float>(env.ex, d, mf.data(), of.data());
    EXPECT_LT(rel_err(of, want), 2e-6);
    for (int64_t i = 0; i < d.batch; ++i)
      for (int64_t k = d.kernels; k < d.ldo; ++k) EXPECT_EQ(of[size_t(i * d.ldo + k)], 0.0f);
  }
}

TEST(CpuMinibatchDisc, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  for (const auto& d : kDiscCases) {
    SCOPED_TRACE(testing::Message() << "B " << d.batch << " A " << d.kernels << " C " << d.dims);
    if (d.batch > 20) continue;  // finite differences cost B^3 A C each
    auto m = randn(size_t(d.batch * d.kernels * d.dims), 2, 0.3);
    const auto R = randn(size_t(d.batch * d.ldo), 3);
    auto loss = [&] {
      std::vector<double> o(R.size(), 0.0);
      ops::mbdisc_forward<double>(env.ex, d, m.data(), o.data());
      return dot(R, o);
    };
    std::vector<double> dm(m.size(), std::numeric_limits<double>::quiet_NaN());  // written, not added
    ops::mbdisc_backward<double>(env.ex, d, m.data(), R.data(), dm.data());
    EXPECT_LT(rel_err(dm, numeric_grad(m, loss)), kGradTol);
  }
}

TEST(CpuMinibatchDisc, LargeBatchIsTheSameForAnyThreadCountAndMatchesDouble) {
  const MinibatchDiscDims d{300, 37, 5, 40};
  const auto md = randn(size_t(d.batch * d.kernels * d.dims), 4, 0.2);
  const auto m = cast<float>(md);
  const auto R = cast<float>(randn(size_t(d.batch * d.ldo), 5));
  std::vector<float> o1(R.size(), 0.0f), o2 = o1, dm1(m.size()), dm2(m.size());
  Exec one = Exec::cpu(1), two = Exec::cpu(2);
  ops::mbdisc_forward<float>(one, d, m.data(), o1.data());
  ops::mbdisc_forward<float>(two, d, m.data(), o2.data());
  ops::mbdisc_backward<float>(one, d, m.data(), R.data(), dm1.data());
  ops::mbdisc_backward<float>(two, d, m.data(), R.data(), dm2.data());
  EXPECT_EQ(o1, o2);
  EXPECT_EQ(dm1, dm2);
  std::vector<double> od(R.size(), 0.0), dmd(m.size());
  ops::mbdisc_forward<double>(one, d, md.data(), od.data());
  ops::mbdisc_backward<double>(one, d, md.data(), cast<double>(R).data(), dmd.data());
  EXPECT_LT(rel_err(o1, od), 1e-5);
  EXPECT_LT(rel_err(dm1, dmd), 1e-5);
}

TEST(CpuMinibatchDisc, TheVectorizableExpIsWithinFourUlp) {
  auto ulp = [](float a, float b) {
    int32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return std::abs(int64_t(x) - int64_t(y));
  };
  int64_t worst = 0;
  for (int k = 0; k <= 86900; ++k) {  // below -87 the clamp decides
    const float x = -0.001f * float(k) - 1e-7f * float(k % 13);
    worst = std::max(worst, ulp(cpu::exp_nonpositive_vectorizable(x), float(std::exp(double(x)))));
  }
  EXPECT_LE(worst, 4);
  EXPECT_EQ(cpu::exp_nonpositive_vectorizable(0.0f), 1.0f);
  EXPECT_GT(cpu::exp_nonpositive_vectorizable(-1000.0f), 0.0f);  // clamped, never denormal
  EXPECT_LT(cpu::exp_nonpositive_vectorizable(-1000.0f), 2e-38f);
  EXPECT_TRUE(std::isnan(cpu::exp_nonpositive_vectorizable(std::numeric_limits<float>::quiet_NaN())));
}

// ---- minibatch standard deviation ------------------------------------------------------------

std::vector<double> mbstd_ref(const MinibatchStdDims& d, const std::vector<double>& x) {
  const int64_t B = d.batch, F = d.features(), C = d.channels;
  double s = 0;
  for (int64_t f = 0; f < F; ++f) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < B; ++i) mean += x[size_t(i * F + f)];
    mean /= double(B);
    for (int64_t i = 0; i < B; ++i) var += (x[size_t(i * F + f)] - mean) * (x[size_t(i * F + f)] - mean);
    s += std::sqrt(var / double(B) + double(d.eps));
  }
  s /= double(F);
  std::vector<double> y;
  for (int64_t r = 0; r < B * d.positions; ++r) {
    for (int64_t c = 0; c < C; ++c) y.push_back(x[size_t(r * C + c)]);
    y.push_back(s);
  }
  return y;
}

// Features [5, 7]; images [4, 3x2, 3]; a single sample (sigma = sqrt(eps)).
const MinibatchStdDims kStdCases[] = {{5, 1, 7, 1e-8f}, {4, 6, 3, 1e-8f}, {1, 2, 2, 1e-4f}};

TEST(CpuMinibatchStd, ForwardMatchesTheDefinition) {
  CpuEnv env;
  for (const auto& d : kStdCases) {
    const auto x = randn(size_t(d.batch * d.features()), 6, 1.5);
    const auto want = mbstd_ref(d, x);
    std::vector<double> y(want.size()), stats(size_t(2 * d.features() + 1));
    ops::mbstd_forward<double>(env.ex, d, x.data(), y.data(), stats.data());
    EXPECT_LT(rel_err(y, want), 1e-14);
    std::vector<float> yf(want.size()), sf(stats.size());
    const auto xf = cast<float>(x);
    ops::mbstd_forward<float>(env.ex, d, xf.data(), yf.data(), sf.data());
    EXPECT_LT(rel_err(yf, want), 1e-6);
  }
}

TEST(CpuMinibatchStd, BackwardMatchesFiniteDifferencesAndAccumulates) {
  CpuEnv env;
  for (const auto& d : kStdCases) {
    SCOPED_TRACE(testing::Message() << "B " << d.batch << " P " << d.positions << " C " << d.channels);
    auto x = randn(size_t(d.batch * d.features()), 7);
    const auto R = randn(size_t(d.batch * d.positions * (d.channels + 1)), 8);
    std::vector<double> y(R.size()), stats(size_t(2 * d.features() + 1));
    auto loss = [&] {
      ops::mbstd_forward<double>(env.ex, d, x.data(), y.data(), stats.data());
      return dot(R, y);
    };
    loss();
    std::vector<double> dx(x.size(), std::numeric_limits<double>::quiet_NaN());
    ops::mbstd_backward<double>(env.ex, d, x.data(), stats.data(), R.data(), dx.data(), false);
    const auto numeric = numeric_grad(x, loss);
    EXPECT_LT(rel_err(dx, numeric), kGradTol);
    loss();
    const auto dx0 = randn(x.size(), 9);
    std::vector<double> acc = dx0;
    ops::mbstd_backward<double>(env.ex, d, x.data(), stats.data(), R.data(), acc.data(), true);
    EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-12);
    ops::mbstd_backward<double>(env.ex, d, x.data(), stats.data(), R.data(), nullptr, false);  // no-op
  }
}

}  // namespace
}  // namespace gancu::test
