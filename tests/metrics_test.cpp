// Known-answer tests of the evaluation metrics: class statistics, Frechet distance, k-NN
// precision/recall/density/coverage and 2-d mixture statistics.
#include "gancu/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gancu/check.h"
#include "gancu/exec.h"
#include "gancu/memory.h"
#include "gancu/mixture.h"
#include "metrics/metrics_internal.h"

namespace gancu {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- Class statistics ---------------------------------------------------------------------------

std::vector<float> one_hot_rows(int n, int classes, int (*label)(int, int)) {
  std::vector<float> p(size_t(n) * classes, 0.0f);
  for (int i = 0; i < n; ++i) p[size_t(i) * classes + label(i, classes)] = 1.0f;
  return p;
}

TEST(MetricsClass, OneHotSpreadEvenlyScoresTheClassCount) {
  const int classes = 10, n = 30;
  const auto p = one_hot_rows(n, classes, [](int i, int c) { return i % c; });
  const ClassStats s = class_statistics(p.data(), n, classes);
  EXPECT_NEAR(s.inception_score, double(classes), 1e-12);
  EXPECT_EQ(s.modes_covered, classes);
  EXPECT_NEAR(s.kl_from_uniform, 0.0, 1e-15);
  for (int64_t h : s.histogram) EXPECT_EQ(h, 3);
}

TEST(MetricsClass, UniformPredictionsScoreOne) {
  const int classes = 4, n = 5;
  std::vector<float> p(size_t(n) * classes, 0.25f);
  const ClassStats s = class_statistics(p.data(), n, classes);
  EXPECT_NEAR(s.inception_score, 1.0, 1e-12);
  // Ties go to the lowest class: every sample counts for class 0.
  EXPECT_EQ(s.histogram, (std::vector<int64_t>{5, 0, 0, 0}));
  EXPECT_EQ(s.modes_covered, 1);
  EXPECT_NEAR(s.kl_from_uniform, std::log(4.0), 1e-12);
}

TEST(MetricsClass, OneHotAllInOneClassScoresOne) {
  const int classes = 6, n = 12;
  const auto p = one_hot_rows(n, classes, [](int, int) { return 2; });
  const ClassStats s = class_statistics(p.data(), n, classes);
  EXPECT_NEAR(s.inception_score, 1.0, 1e-12);
  EXPECT_EQ(s.modes_covered, 1);
  EXPECT_EQ(s.histogram[2], n);
  EXPECT_NEAR(s.kl_from_uniform, std::log(6.0), 1e-12);
}

TEST(MetricsClass, ScoreOfAMixedCaseByHand) {
  // Rows (1, 0) and (1/2, 1/2): p(y) = (3/4, 1/4).
  const std::vector<float> p = {1.0f, 0.0f, 0.5f, 0.5f};
  const double kl1 = std::log(1.0 / 0.75);
  const double kl2 = 0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25);
  const ClassStats s = class_statistics(p.data(), 2, 2);
  EXPECT_NEAR(s.inception_score, std::exp(0.5 * (kl1 + kl2)), 1e-12);
}

TEST(MetricsClass, KlFromUniformOfHistograms) {
  EXPECT_NEAR(kl_from_uniform({7, 7, 7, 7, 7}), 0.0, 1e-15);
  EXPECT_NEAR(kl_from_uniform({0, 0, 9, 0}), std::log(4.0), 1e-12);
  EXPECT_NEAR(kl_from_uniform({3, 1}), 0.75 * std::log(1.5) + 0.25 * std::log(0.5), 1e-12);
  EXPECT_THROW(kl_from_uniform({}), RuntimeError);
  EXPECT_THROW(kl_from_uniform({0, 0}), RuntimeError);
  EXPECT_THROW(kl_from_uniform({1, -1}), RuntimeError);
}

TEST(MetricsClass, RejectsWhatAreNotProbabilities) {
  const std::vector<float> negative = {1.5f, -0.5f};
  const std::vector<float> logits = {2.0f, 3.0f};
  const std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN(), 1.0f};
  EXPECT_THROW(class_statistics(negative.data(), 1, 2), RuntimeError);
  EXPECT_THROW(class_statistics(logits.data(), 1, 2), RuntimeError);
  EXPECT_THROW(class_statistics(nan.data(), 1, 2), RuntimeError);
  EXPECT_THROW(class_statistics(logits.data(), 0, 2), RuntimeError);
  EXPECT_THROW(class_statistics(logits.data(), 1, 0), RuntimeError);
}

// ---- Frechet distance ---------------------------------------------------------------------------

using Matrix = std::vector<double>;  // row-major n x n

Matrix matmul(const Matrix& a, const Matrix& b, int n) {
  Matrix c(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < n; ++j) c[size_t(i) * n + j] += a[size_t(i) * n + k] * b[size_t(k) * n + j];
  return c;
}

// Gauss-Jordan elimination with partial pivoting.
Matrix inverse(Matrix a, int n) {
  Matrix inv(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) inv[size_t(i) * n + i] = 1.0;
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r)
      if (std::fabs(a[size_t(r) * n + col]) > std::fabs(a[size_t(pivot) * n + col])) pivot = r;
    for (int j = 0; j < n; ++j) {
      std::swap(a[size_t(col) * n + j], a[size_t(pivot) * n + j]);
      std::swap(inv[size_t(col) * n + j], inv[size_t(pivot) * n + j]);
    }
    const double d = a[size_t(col) * n + col];
    for (int j = 0; j < n; ++j) {
      a[size_t(col) * n + j] /= d;
      inv[size_t(col) * n + j] /= d;
    }
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = a[size_t(r) * n + col];
      for (int j = 0; j < n; ++j) {
        a[size_t(r) * n + j] -= f * a[size_t(col) * n + j];
        inv[size_t(r) * n + j] -= f * inv[size_t(col) * n + j];
      }
    }
  }
  return inv;
}

// Trace of the principal square root of a (non-symmetric) matrix with positive eigenvalues, by the
// Denman-Beavers iteration: Y -> (Y + Z^-1) / 2, Z -> (Z + Y^-1) / 2 from Y = A, Z = I; Y -> A^(1/2).
// Independent of the eigendecomposition that frechet_distance uses.
double trace_sqrtm_denman_beavers(const Matrix& a, int n) {
  Matrix y = a, z(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) z[size_t(i) * n + i] = 1.0;
  for (int it = 0; it < 100; ++it) {
    const Matrix yi = inverse(y, n), zi = inverse(z, n);
    double change = 0;
    for (size_t e = 0; e < y.size(); ++e) {
      const double ny = 0.5 * (y[e] + zi[e]);
      change = std::max(change, std::fabs(ny - y[e]));
      y[e] = ny;
      z[e] = 0.5 * (z[e] + yi[e]);
    }
    if (change < 1e-15) break;
  }
  double t = 0;
  for (int i = 0; i < n; ++i) t += y[size_t(i) * n + i];
  return t;
}

Gaussian make_gaussian(std::vector<double> mean, Matrix cov) {
  Gaussian g;
  g.dim = int(mean.size());
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

// A random symmetric positive definite matrix B B^T + shift I.
Matrix random_spd(int n, uint64_t seed, double shift) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  Matrix b(size_t(n) * n);
  for (double& v : b) v = dist(gen);
  Matrix s(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      for (int k = 0; k < n; ++k) s[size_t(i) * n + j] += b[size_t(i) * n + k] * b[size_t(j) * n + k];
      if (i == j) s[size_t(i) * n + j] += shift;
    }
  return s;
}

TEST(MetricsFrechet, OneDimensionalClosedForm) {
  // (mu1 - mu2)^2 + (s1 - s2)^2 with variances s^2.
  const Gaussian a = make_gaussian({1.0}, {4.0});
  const Gaussian b = make_gaussian({3.5}, {9.0});
  EXPECT_NEAR(frechet_distance(a, b), 2.5 * 2.5 + 1.0, 1e-12);
}

TEST(MetricsFrechet, DiagonalCovariances) {
  const std::vector<double> m1 = {0.0, 1.0, -2.0}, m2 = {1.0, 1.0, 0.5};
  const std::vector<double> v1 = {1.0, 0.25, 4.0}, v2 = {2.0, 1.0, 0.5};
  Matrix s1(9, 0.0), s2(9, 0.0);
  double expected = 0;
  for (int i = 0; i < 3; ++i) {
    s1[size_t(i) * 4] = v1[size_t(i)];
    s2[size_t(i) * 4] = v2[size_t(i)];
    const double dm = m1[size_t(i)] - m2[size_t(i)];
    const double ds = std::sqrt(v1[size_t(i)]) - std::sqrt(v2[size_t(i)]);
    expected += dm * dm + ds * ds;
  }
  EXPECT_NEAR(frechet_distance(make_gaussian(m1, s1), make_gaussian(m2, s2)), expected, 1e-12);
}

TEST(MetricsFrechet, TwoByTwoNonCommutingClosedForm) {
  // For a 2x2 matrix A with positive eigenvalues, tr A^(1/2) = sqrt(tr A + 2 sqrt(det A)).
  const Matrix s1 = {2.0, 0.7, 0.7, 1.0}, s2 = {0.5, -0.3, -0.3, 3.0};
  const Matrix p = matmul(s1, s2, 2);
  ASSERT_GT(std::fabs(p[1] - matmul(s2, s1, 2)[1]), 0.1);  // they do not commute
  const double det = p[0] * p[3] - p[1] * p[2];
  const double tr_root = std::sqrt(p[0] + p[3] + 2 * std::sqrt(det));
  const double expected = (1.0 * 1.0 + 2.0 * 2.0) + (2.0 + 1.0) + (0.5 + 3.0) - 2 * tr_root;
  const double got = frechet_distance(make_gaussian({0.0, 0.0}, s1), make_gaussian({1.0, -2.0}, s2));
  EXPECT_NEAR(got, expected, 1e-12);
}

TEST(MetricsFrechet, GeneralCaseAgreesWithDenmanBeavers) {
  for (int n : {4, 16}) {
    const Matrix s1 = random_spd(n, 11 + n, 0.5), s2 = random_spd(n, 23 + n, 0.1);
    std::vector<double> m1(static_cast<size_t>(n)), m2(static_cast<size_t>(n));
    double expected = 0, tr1 = 0, tr2 = 0;
    for (int i = 0; i < n; ++i) {
      m1[size_t(i)] = 0.1 * i;
      m2[size_t(i)] = -0.05 * i * i;
      expected += (m1[size_t(i)] - m2[size_t(i)]) * (m1[size_t(i)] - m2[size_t(i)]);
      tr1 += s1[size_t(i) * n + i];
      tr2 += s2[size_t(i) * n + i];
    }
    expected += tr1 + tr2 - 2 * trace_sqrtm_denman_beavers(matmul(s1, s2, n), n);
    const double got = frechet_distance(make_gaussian(m1, s1), make_gaussian(m2, s2));
    EXPECT_NEAR(got, expected, 1e-9 * std::max(1.0, expected)) << "n = " << n;
    // Symmetric in its arguments.
    EXPECT_NEAR(frechet_distance(make_gaussian(m2, s2), make_gaussian(m1, s1)), got,
                1e-9 * std::max(1.0, got));
  }
}

TEST(MetricsFrechet, IdenticalGaussiansAreAtZero) {
  const int n = 32;
  const Gaussian g = make_gaussian(std::vector<double>(size_t(n), 0.3), random_spd(n, 5, 0.01));
  EXPECT_NEAR(frechet_distance(g, g), 0.0, 1e-9);
  EXPECT_GE(frechet_distance(g, g), 0.0);
}

TEST(MetricsFrechet, SingularCovariancesAreClamped) {
  // Rank-1 covariances (as a fit with n <= dim gives): eigenvalues that round below 0 are clamped.
  const Matrix s = {1.0, 1.0, 1.0, 1.0};
  const double d = frechet_distance(make_gaussian({0.0, 0.0}, s), make_gaussian({0.0, 0.0}, s));
  EXPECT_NEAR(d, 0.0, 1e-9);
  // Both degenerate along orthogonal directions: W2^2 = tr S1 + tr S2 (the product is 0).
  const Matrix a = {1.0, 0.0, 0.0, 0.0}, b = {0.0, 0.0, 0.0, 4.0};
  EXPECT_NEAR(frechet_distance(make_gaussian({0.0, 0.0}, a), make_gaussian({0.0, 0.0}, b)), 5.0, 1e-12);
}

TEST(MetricsFrechet, RejectsMismatchedOrMalformedGaussians) {
  const Gaussian a = make_gaussian({0.0}, {1.0});
  const Gaussian b = make_gaussian({0.0, 0.0}, {1.0, 0.0, 0.0, 1.0});
  EXPECT_THROW(frechet_distance(a, b), RuntimeError);
  Gaussian bad = b;
  bad.cov.pop_back();
  EXPECT_THROW(frechet_distance(bad, b), RuntimeError);
  Gaussian nan = b;
  nan.mean[0] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(frechet_distance(nan, b), RuntimeError);
  EXPECT_THROW(frechet_distance(Gaussian{}, Gaussian{}), RuntimeError);
}

TEST(MetricsFrechet, FitGaussianOfConstructedSamples) {
  // (0,0), (1,2), (2,1): mean (1,1), centred rows (-1,-1), (0,1), (1,0); covariance / (n-1).
  const std::vector<float> x = {0, 0, 1, 2, 2, 1};
  const Gaussian g = fit_gaussian(x.data(), 3, 2);
  EXPECT_EQ(g.dim, 2);
  EXPECT_EQ(g.mean, (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(g.cov, (std::vector<double>{1.0, 0.5, 0.5, 1.0}));

  // 600 rows (several accumulation chunks): x = -1, 1, ...; y = 2, -1, -1, ...; z = x + y. Means are
  // 0; sums of squares 600, 1200, 1800 and cross sums xy 0, xz 600, yz 1200.
  const int n = 600;
  std::vector<float> rows;
  for (int i = 0; i < n; ++i) {
    const float a = i % 2 ? 1.0f : -1.0f, b = i % 3 == 0 ? 2.0f : -1.0f;
    rows.insert(rows.end(), {a, b, a + b});
  }
  const Gaussian h = fit_gaussian(rows.data(), n, 3);
  for (double m : h.mean) EXPECT_EQ(m, 0.0);
  const double u = 600.0 / 599.0;
  const std::vector<double> expected = {u, 0, u, 0, 2 * u, 2 * u, u, 2 * u, 3 * u};
  for (size_t e = 0; e < expected.size(); ++e) EXPECT_DOUBLE_EQ(h.cov[e], expected[e]) << e;

  // Shifting the sample moves the mean only: the distance is ||shift||^2.
  std::vector<float> shifted = rows;
  for (int i = 0; i < n; ++i) {
    shifted[size_t(i) * 3] += 3.0f;
    shifted[size_t(i) * 3 + 2] -= 4.0f;
  }
  EXPECT_NEAR(frechet_distance(h, fit_gaussian(shifted.data(), n, 3)), 25.0, 1e-9);
}

TEST(MetricsFrechet, FitGaussianRejectsTooFewSamplesAndBadInput) {
  const std::vector<float> x = {1, 2, 3, 4};
  EXPECT_THROW(fit_gaussian(x.data(), 1, 2), RuntimeError);
  EXPECT_THROW(fit_gaussian(x.data(), 2, 0), RuntimeError);
  const std::vector<float> inf = {1, std::numeric_limits<float>::infinity()};
  EXPECT_THROW(fit_gaussian(inf.data(), 2, 1), RuntimeError);
}

// ---- k-NN precision, recall, density, coverage --------------------------------------------------

std::vector<float> random_points(int n, int dim, uint64_t seed, float offset = 0.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> p(size_t(n) * dim);
  for (float& v : p) v = dist(gen) + offset;
  return p;
}

// `count` points on a circle of radius 1 around (cx, 0), at angles 2 pi (i + phase) / count.
void add_ring(std::vector<float>& pts, int count, float cx, double phase) {
  for (int i = 0; i < count; ++i) {
    const double angle = 2 * kPi * (i + phase) / count;
    pts.push_back(cx + float(std::cos(angle)));
    pts.push_back(float(std::sin(angle)));
  }
}

void expect_prdc(const PRDC& got, double p, double r, double d, double c) {
  EXPECT_DOUBLE_EQ(got.precision, p);
  EXPECT_DOUBLE_EQ(got.recall, r);
  EXPECT_DOUBLE_EQ(got.f1, p + r > 0 ? 2 * p * r / (p + r) : 0.0);
  EXPECT_DOUBLE_EQ(got.density, d);
  EXPECT_DOUBLE_EQ(got.coverage, c);
}

TEST(MetricsPrdc, KnnRadiiExcludeThePointItself) {
  const Exec ex = Exec::cpu();
  // 1-d points 0, 1, 3, 6, 10 with k = 2: second-nearest distances 3, 2, 3, 4, 7.
  const std::vector<float> x = {0, 1, 3, 6, 10};
  Buffer<float> dev(ex, x);
  for (int block : {1, 2, 1024})
    EXPECT_EQ(detail::knn_sq_radii(ex, dev.data(), 5, 1, 2, block), (std::vector<float>{9, 4, 9, 16, 49}));
  // A duplicate is a neighbour at distance 0.
  const std::vector<float> y = {0, 0, 5};
  Buffer<float> dup(ex, y);
  EXPECT_EQ(detail::knn_sq_radii(ex, dup.data(), 3, 1, 1, 2), (std::vector<float>{0, 0, 25}));
}

TEST(MetricsPrdc, InterleavedRingsGiveExactlyOne) {
  // Real points on a ring of 12, fake points half-way between them, k = 2. Each real ball has the
  // radius of one step (both neighbours are one step away); each fake point lies half a step from
  // two real points and 1.5 steps from the next, so it is in exactly two real balls: density
  // = 12 * 2 / (2 * 12) = 1, and by symmetry everything else is 1 too.
  std::vector<float> real, fake;
  add_ring(real, 12, 0.0f, 0.0);
  add_ring(fake, 12, 0.0f, 0.5);
  const PRDC r = precision_recall_density_coverage(Exec::cpu(), real.data(), 12, fake.data(), 12, 2, 2);
  expect_prdc(r, 1, 1, 1, 1);
}

TEST(MetricsPrdc, IdenticalSetsAreFullyPreciseAndCovered) {
  // With fake == real (no ties), each real ball holds its own point and its k neighbours: density
  // is (k + 1) / k, not 1 (density's expectation is 1 for two independent samples of one
  // distribution, not for the same sample twice).
  const int n = 64, dim = 8, k = 3;
  const auto x = random_points(n, dim, 7);
  const PRDC r = precision_recall_density_coverage(Exec::cpu(), x.data(), n, x.data(), n, dim, k);
  expect_prdc(r, 1, 1, double(k + 1) / k, 1);
}

TEST(MetricsPrdc, FarAwayFakesScoreZero) {
  const int n = 40, dim = 6;
  const auto real = random_points(n, dim, 1);
  const auto fake = random_points(n + 5, dim, 2, 100.0f);
  const PRDC r = precision_recall_density_coverage(Exec::cpu(), real.data(), n, fake.data(), n + 5, dim, 3);
  expect_prdc(r, 0, 0, 0, 0);
}

TEST(MetricsPrdc, FakesOnHalfTheClustersRecallHalf) {
  // Four rings of 12 real points, 10 apart; fakes interleaved with the first two rings only. Each
  // fake is in exactly two real balls of its ring (see InterleavedRings), no ball reaches another
  // ring: precision 1, recall 1/2, density 1, coverage 1/2.
  std::vector<float> real, fake;
  for (int c = 0; c < 4; ++c) add_ring(real, 12, 10.0f * c, 0.0);
  for (int c = 0; c < 2; ++c) add_ring(fake, 12, 10.0f * c, 0.5);
  const PRDC r = precision_recall_density_coverage(Exec::cpu(), real.data(), 48, fake.data(), 24, 2, 2);
  expect_prdc(r, 1, 0.5, 1, 0.5);
  EXPECT_DOUBLE_EQ(r.f1, 2.0 / 3.0);
}

// Brute force from the definitions, in double with exact Euclidean distances.
PRDC prdc_reference(const std::vector<float>& real, int nr, const std::vector<float>& fake, int nf, int dim,
                    int k) {
  auto d2 = [&](const std::vector<float>& a, int i, const std::vector<float>& b, int j) {
    double s = 0;
    for (int c = 0; c < dim; ++c) {
      const double t = double(a[size_t(i) * dim + c]) - double(b[size_t(j) * dim + c]);
      s += t * t;
    }
    return s;
  };
  auto radii = [&](const std::vector<float>& x, int n) {
    std::vector<double> r(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      std::vector<double> others;
      for (int j = 0; j < n; ++j)
        if (j != i) others.push_back(d2(x, i, x, j));
      std::sort(others.begin(), others.end());
      r[size_t(i)] = others[size_t(k - 1)];
    }
    return r;
  };
  const auto rr = radii(real, nr), rf = radii(fake, nf);
  int precise = 0, recalled = 0, covered = 0;
  int64_t inside = 0;
  for (int j = 0; j < nf; ++j) {
    bool any = false;
    for (int i = 0; i < nr; ++i) {
      const bool in = d2(real, i, fake, j) <= rr[size_t(i)];
      any |= in;
      inside += in;
    }
    precise += any;
  }
  for (int i = 0; i < nr; ++i) {
    bool in_fake = false, cov = false;
    for (int j = 0; j < nf; ++j) {
      in_fake |= d2(real, i, fake, j) <= rf[size_t(j)];
      cov |= d2(real, i, fake, j) <= rr[size_t(i)];
    }
    recalled += in_fake;
    covered += cov;
  }
  PRDC p;
  p.precision = double(precise) / nf;
  p.recall = double(recalled) / nr;
  p.f1 = p.precision + p.recall > 0 ? 2 * p.precision * p.recall / (p.precision + p.recall) : 0.0;
  p.density = double(inside) / (double(k) * nf);
  p.coverage = double(covered) / nr;
  return p;
}

TEST(MetricsPrdc, TilingDoesNotChangeTheResultAndMatchesBruteForce) {
  const int nr = 100, nf = 77, dim = 5, k = 4;
  const auto real = random_points(nr, dim, 3);
  const auto fake = random_points(nf, dim, 4, 0.4f);  // shifted: all metrics strictly between 0 and 1
  const Exec ex = Exec::cpu();
  const PRDC big = detail::prdc_tiled(ex, real.data(), nr, fake.data(), nf, dim, k, 1024);
  const PRDC ref = prdc_reference(real, nr, fake, nf, dim, k);
  expect_prdc(big, ref.precision, ref.recall, ref.density, ref.coverage);
  EXPECT_GT(big.precision, 0.0);
  EXPECT_LT(big.precision, 1.0);
  EXPECT_LT(big.recall, 1.0);
  EXPECT_LT(big.coverage, 1.0);
  for (int block : {1, 7, 64}) {
    const PRDC small = detail::prdc_tiled(ex, real.data(), nr, fake.data(), nf, dim, k, block);
    expect_prdc(small, big.precision, big.recall, big.density, big.coverage);
  }
  const PRDC dflt = precision_recall_density_coverage(ex, real.data(), nr, fake.data(), nf, dim, k);
  expect_prdc(dflt, big.precision, big.recall, big.density, big.coverage);
}

TEST(MetricsPrdc, BlockRowsShrinkForHugeSets) {
  EXPECT_EQ(detail::prdc_block_rows(1000), 1024);
  EXPECT_EQ(detail::prdc_block_rows(int64_t(1) << 20), 16);
  EXPECT_EQ(detail::prdc_block_rows(int64_t(1) << 30), 1);
}

TEST(MetricsPrdc, RejectsBadArguments) {
  const Exec ex = Exec::cpu();
  const auto x = random_points(5, 2, 9);
  EXPECT_THROW(precision_recall_density_coverage(ex, x.data(), 5, x.data(), 5, 2, 5),
               RuntimeError);  // k >= n
  EXPECT_THROW(precision_recall_density_coverage(ex, x.data(), 5, x.data(), 3, 2, 3), RuntimeError);
  EXPECT_THROW(precision_recall_density_coverage(ex, x.data(), 5, x.data(), 5, 2, 0), RuntimeError);
  EXPECT_THROW(precision_recall_density_coverage(ex, x.data(), 5, x.data(), 5, 0, 3), RuntimeError);
  EXPECT_THROW(detail::prdc_tiled(ex, x.data(), 5, x.data(), 5, 2, 3, 0), RuntimeError);
  auto nan = x;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(precision_recall_density_coverage(ex, x.data(), 5, nan.data(), 5, 2, 3), RuntimeError);
}

// ---- 2-d mixtures -------------------------------------------------------------------------------

void add_points(std::vector<float>& pts, const Mixture2D& mix, int mode, int count, float dx, float dy) {
  float cx, cy;
  mixture_center(mix, mode, &cx, &cy);
  for (int i = 0; i < count; ++i) {
    pts.push_back(cx + dx);
    pts.push_back(cy + dy);
  }
}

TEST(MetricsMixture, CountsModesAndHighQualitySamples) {
  Mixture2D mix;  // 8 modes on a ring of radius 2, std 0.02: within 3 std = within 0.06
  mix.modes = 8;
  mix.scale = 2.0f;
  mix.std = 0.02f;
  std::vector<float> pts;
  add_points(pts, mix, 0, 60, 0.03f, -0.04f);  // 0.05 away
  add_points(pts, mix, 3, 1, 0.0f, 0.0f);
  add_points(pts, mix, 6, 29, 0.0f, -0.055f);
  add_points(pts, mix, 5, 5, 0.07f, 0.0f);  // 3.5 std: low quality
  add_points(pts, mix, 0, 4, 100.0f, 100.0f);
  pts.push_back(std::numeric_limits<float>::quiet_NaN());  // a diverged sample: low quality
  pts.push_back(0.0f);
  const int64_t n = int64_t(pts.size() / 2);
  ASSERT_EQ(n, 100);

  const MixtureStats s = mixture_statistics(mix, pts.data(), n, 0.01);
  EXPECT_EQ(s.per_mode, (std::vector<int64_t>{60, 0, 0, 1, 0, 0, 29, 0}));
  EXPECT_EQ(s.modes_covered, 3);
  EXPECT_DOUBLE_EQ(s.high_quality, 0.9);
  EXPECT_EQ(mixture_statistics(mix, pts.data(), n, 0.02).modes_covered, 2);  // 1 sample < 2% of 100
  EXPECT_EQ(mixture_statistics(mix, pts.data(), n, 0.0).modes_covered, 3);   // empty modes never count
  EXPECT_EQ(mixture_statistics(mix, pts.data(), n, 0.5).modes_covered, 1);
}

TEST(MetricsMixture, GridMixtureAndNearestModeAssignment) {
  Mixture2D mix;
  mix.grid = true;
  mix.modes = 4;  // a 2x2 grid at (+-0.5, +-0.5)
  mix.scale = 1.0f;
  mix.std = 0.5f;  // 3 std = 1.5: the balls overlap, each point counts once, for its nearest mode
  std::vector<float> pts;
  for (int m = 0; m < 4; ++m) add_points(pts, mix, m, m + 1, 0.1f, 0.0f);
  const MixtureStats s = mixture_statistics(mix, pts.data(), 10);
  EXPECT_EQ(s.per_mode, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.modes_covered, 4);
  EXPECT_DOUBLE_EQ(s.high_quality, 1.0);
}

TEST(MetricsMixture, RejectsBadArguments) {
  Mixture2D mix;
  const std::vector<float> p = {0, 0};
  EXPECT_THROW(mixture_statistics(mix, p.data(), 0), RuntimeError);
  EXPECT_THROW(mixture_statistics(mix, p.data(), 1, 1.5), RuntimeError);
  Mixture2D no_std = mix;
  no_std.std = 0;
  EXPECT_THROW(mixture_statistics(no_std, p.data(), 1), RuntimeError);
  Mixture2D no_modes = mix;
  no_modes.modes = 0;
  EXPECT_THROW(mixture_statistics(no_modes, p.data(), 1), RuntimeError);
}

}  // namespace
}  // namespace gancu
