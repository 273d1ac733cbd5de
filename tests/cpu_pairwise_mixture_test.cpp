// CPU pairwise squared distances (against direct loops; identical rows give 0, never a negative
// value) and the 2-d Gaussian mixture sampler (deterministic per step, the centres of ring and
// grid, and per-mode mean, standard deviation and share over 100k points).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu_test_util.h"
#include "gancu/mixture.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

std::vector<double> distances_direct(int m, int n, int d, const std::vector<double>& a,
                                     const std::vector<double>& b) {
  std::vector<double> out(size_t(m) * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < d; ++k) {
        const double t = a[size_t(i) * d + k] - b[size_t(j) * d + k];
        s += t * t;
      }
      out[size_t(i) * n + j] = s;
    }
  return out;
}

TEST(CpuPairwise, MatchesDirectLoops) {
  CpuEnv env;
  struct Case {
    int m, n, d;
  } cases[] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {13, 129, 31}, {200, 301, 7}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const auto a = randn(size_t(c.m) * c.d, seed++), b = randn(size_t(c.n) * c.d, seed++);
    std::vector<double> out(size_t(c.m) * c.n, NAN);
    ops::pairwise_sq_distances<double>(env.ex, c.m, c.n, c.d, a.data(), b.data(), out.data());
    const auto want = distances_direct(c.m, c.n, c.d, a, b);
    EXPECT_LT(rel_err(out, want), 1e-14) << c.m << "x" << c.n << "x" << c.d;
    const auto af = cast<float>(a), bf = cast<float>(b);
    std::vector<float> outf(out.size(), NAN);
    ops::pairwise_sq_distances<float>(env.ex, c.m, c.n, c.d, af.data(), bf.data(), outf.data());
    // Cancellation bound: ~eps (||a||^2 + ||b||^2) per entry, against distances of the same order.
    EXPECT_LT(rel_err(outf, distances_direct(c.m, c.n, c.d, cast<double>(af), cast<double>(bf))), 1e-5)
        << c.m << "x" << c.n << "x" << c.d << " float";
  }
}

TEST(CpuPairwise, IdenticalRowsGiveZeroNeverNegative) {
  CpuEnv env;
  // Exactly representable data (small integers): every product and sum is exact, so the
  // expansion gives exactly the distances, and exactly 0 on the diagonal.
  const int m = 9, d = 17;
  std::mt19937 gen(3);
  std::vector<float> a(size_t(m) * d);
  for (float& v : a) v = float(int(gen() % 9) - 4);
  std::vector<float> out(size_t(m) * m, NAN);
  ops::pairwise_sq_distances<float>(env.ex, m, m, d, a.data(), a.data(), out.data());
  EXPECT_EQ(out, cast<float>(distances_direct(m, m, d, cast<double>(a), cast<double>(a))));
  for (int i = 0; i < m; ++i) EXPECT_EQ(out[size_t(i) * m + i], 0.0f);

  // Random floats: ||a||^2 + ||a||^2 - 2 a.a rounds to a few ulp of ||a||^2 either side of 0;
  // the clamp keeps it at or above 0. 64 rows: a negative value would show up in about half.
  const int rows = 64, dim = 37;
  const auto r = cast<float>(randn(size_t(rows) * dim, 4, 3.0));
  std::vector<float> self(size_t(rows) * rows, NAN);
  ops::pairwise_sq_distances<float>(env.ex, rows, rows, dim, r.data(), r.data(), self.data());
  for (int i = 0; i < rows; ++i) {
    double norm = 0;
    for (int k = 0; k < dim; ++k) norm += double(r[size_t(i) * dim + k]) * r[size_t(i) * dim + k];
    const float diag = self[size_t(i) * rows + i];
    EXPECT_GE(diag, 0.0f) << "row " << i;
    EXPECT_LE(diag, 1e-5 * norm) << "row " << i;
  }
  for (float v : self) EXPECT_GE(v, 0.0f);
}

TEST(CpuPairwise, EmptyRowsAndEmptyOutputs) {
  CpuEnv env;
  std::vector<float> out(6, NAN);
  ops::pairwise_sq_distances<float>(env.ex, 2, 3, 0, nullptr, nullptr, out.data());
  EXPECT_EQ(out, std::vector<float>(6, 0.0f));
  ops::pairwise_sq_distances<float>(env.ex, 0, 3, 4, nullptr, nullptr, nullptr);  // nothing to do
}

// ---- sample_mixture ----------------------------------------------------------------------------

std::vector<std::pair<double, double>> ring_centres(int modes, double radius) {
  std::vector<std::pair<double, double>> c;
  for (int k = 0; k < modes; ++k)
    c.push_back({radius * std::cos(2 * M_PI * k / modes), radius * std::sin(2 * M_PI * k / modes)});
  return c;
}

std::vector<std::pair<double, double>> grid_centres(int side, double spacing) {
  std::vector<std::pair<double, double>> c;
  for (int row = 0; row < side; ++row)
    for (int col = 0; col < side; ++col)
      c.push_back({(col - (side - 1) / 2.0) * spacing, (row - (side - 1) / 2.0) * spacing});
  return c;
}

TEST(CpuMixture, CentresOfRingAndGrid) {
  Mixture2D ring;
  ring.modes = 8;
  ring.scale = 2.0f;
  const auto rc = ring_centres(8, 2.0);
  for (int k = 0; k < 8; ++k) {
    float x, y;
    mixture_center(ring, k, &x, &y);
    EXPECT_NEAR(x, rc[size_t(k)].first, 1e-6) << k;
    EXPECT_NEAR(y, rc[size_t(k)].second, 1e-6) << k;
  }
  Mixture2D grid;
  grid.grid = true;
  grid.modes = 25;
  grid.scale = 1.5f;
  const auto gc = grid_centres(5, 1.5);
  for (int k = 0; k < 25; ++k) {
    float x, y;
    mixture_center(grid, k, &x, &y);
    EXPECT_EQ(x, float(gc[size_t(k)].first)) << k;
    EXPECT_EQ(y, float(gc[size_t(k)].second)) << k;
  }
}

TEST(CpuMixture, SameStepSameSampleOtherStepOtherSample) {
  CpuEnv env;
  Mixture2D mix;
  mix.seed = 42;
  const int64_t n = 1000, s5 = 5, s6 = 6;
  std::vector<float> a(2 * n), b(2 * n), c(2 * n);
  ops::sample_mixture<float>(env.ex, mix, n, &s5, a.data());
  ops::sample_mixture<float>(env.ex, mix, n, &s5, b.data());
  ops::sample_mixture<float>(env.ex, mix, n, &s6, c.data());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  EXPECT_LT(same, 10) << "step 6 repeats step 5";
  // Another seed, another sample; double gets the same numbers as float.
  mix.seed = 43;
  ops::sample_mixture<float>(env.ex, mix, n, &s5, c.data());
  EXPECT_NE(a, c);
  mix.seed = 42;
  std::vector<double> ad(2 * n);
  ops::sample_mixture<double>(env.ex, mix, n, &s5, ad.data());
  EXPECT_EQ(cast<float>(ad), a);
  // A prefix of a larger batch is the smaller batch: point i depends on i only.
  std::vector<float> big(4 * n);
  ops::sample_mixture<float>(env.ex, mix, 2 * n, &s5, big.data());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), big.begin()));
}

// Assigns each point to its nearest centre and checks each mode's mean, std and share.
void check_statistics(const Mixture2D& mix, const std::vector<std::pair<double, double>>& centres) {
  CpuEnv env;
  const int64_t n = 100000, step = 3;
  std::vector<float> pts(2 * n);
  ops::sample_mixture<float>(env.ex, mix, n, &step, pts.data());
  const size_t K = centres.size();
  std::vector<double> cnt(K), sx(K), sy(K), sxx(K), syy(K);
  for (int64_t i = 0; i < n; ++i) {
    const double x = pts[size_t(2 * i)], y = pts[size_t(2 * i + 1)];
    size_t best = 0;
    double bd = 1e300;
    for (size_t k = 0; k < K; ++k) {
      const double d = std::hypot(x - centres[k].first, y - centres[k].second);
      if (d < bd) bd = d, best = k;
    }
    ASSERT_LT(bd, 8 * double(mix.std)) << "point " << i << " is far from every centre";
    cnt[best] += 1;
    sx[best] += x - centres[best].first;
    sy[best] += y - centres[best].second;
    sxx[best] += (x - centres[best].first) * (x - centres[best].first);
    syy[best] += (y - centres[best].second) * (y - centres[best].second);
  }
  const double share = 1.0 / double(K);
  for (size_t k = 0; k < K; ++k) {
    // Share: binomial std sqrt(p (1 - p) / n) <= 0.0011; 5 sigma.
    EXPECT_NEAR(cnt[k] / double(n), share, 5 * std::sqrt(share * (1 - share) / double(n))) << "mode " << k;
    // Mean offset from the centre: std / sqrt(count) per axis; 5 sigma.
    const double tol_mean = 5 * double(mix.std) / std::sqrt(cnt[k]);
    EXPECT_NEAR(sx[k] / cnt[k], 0.0, tol_mean) << "mode " << k;
    EXPECT_NEAR(sy[k] / cnt[k], 0.0, tol_mean) << "mode " << k;
    // Standard deviation per axis: relative std of the estimate ~ 1 / sqrt(2 count) <= 2.3%; 5%.
    EXPECT_NEAR(std::sqrt(sxx[k] / cnt[k]), double(mix.std), 0.05 * double(mix.std)) << "mode " << k;
    EXPECT_NEAR(std::sqrt(syy[k] / cnt[k]), double(mix.std), 0.05 * double(mix.std)) << "mode " << k;
  }
}

TEST(CpuMixture, RingStatistics) {
  Mixture2D mix;
  mix.modes = 8;
  mix.scale = 2.0f;
  mix.std = 0.02f;
  mix.seed = 7;
  check_statistics(mix, ring_centres(8, 2.0));
}

TEST(CpuMixture, GridStatistics) {
  Mixture2D mix;
  mix.grid = true;
  mix.modes = 25;
  mix.scale = 2.0f;
  mix.std = 0.05f;
  mix.seed = 8;
  check_statistics(mix, grid_centres(5, 2.0));
}

}  // namespace
}  // namespace gancu::test
