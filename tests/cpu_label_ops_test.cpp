// CPU ops of conditional models, in double: the fake batch's classes (uniform, in range, the same
// for the same step, new for a new step), one-hot rows, the embedding lookup and its table
// gradient, the projection term and its two gradients, against direct loops and finite
// differences; a label row that is not one-hot reads its largest value (first on ties).
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::test {
namespace {

// One-hot label rows [n, classes] of the given classes.
std::vector<double> one_hot_rows(const std::vector<int>& cls, int classes) {
  std::vector<double> rows(cls.size() * size_t(classes), 0.0);
  for (size_t s = 0; s < cls.size(); ++s) rows[s * size_t(classes) + size_t(cls[s])] = 1.0;
  return rows;
}

TEST(CpuLabels, DrawnClassesAreUniformAndKeyedByTheStep) {
  CpuEnv env;
  const int classes = 10;
  const int64_t n = 20000;
  std::vector<int32_t> a(n), b(n), c(n);
  int64_t step = 7;
  ops::draw_classes<float>(env.ex, n, classes, 3, kStreamClasses, &step, a.data());
  ops::draw_classes<float>(env.ex, n, classes, 3, kStreamClasses, &step, b.data());
  step = 8;
  ops::draw_classes<float>(env.ex, n, classes, 3, kStreamClasses, &step, c.data());
  EXPECT_EQ(a, b) << "the same step draws the same classes";
  EXPECT_NE(a, c) << "a new step draws new classes";
  std::vector<int> count(classes, 0);
  for (int32_t k : a) {
    ASSERT_TRUE(k >= 0 && k < classes) << k;
    ++count[size_t(k)];
  }
  // 2,000 expected per class; 5 standard deviations (sqrt(2000 * 0.9) ~ 42) either side.
  for (int k = 0; k < classes; ++k) EXPECT_NEAR(count[size_t(k)], 2000, 210) << "class " << k;
  EXPECT_EQ(a[5], philox_class(3, kStreamClasses, 7, 5, classes)) << "rng.h's definition";
}

TEST(CpuLabels, OneHotRows) {
  CpuEnv env;
  const std::vector<int32_t> labels = {2, 0, 3, 3, 7};  // 7: outside 4 classes, a row of zeros
  std::vector<double> out(labels.size() * 4, NAN);
  ops::one_hot<double>(env.ex, int64_t(labels.size()), 4, labels.data(), out.data());
  const std::vector<double> want = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
  EXPECT_EQ(out, want);
}

TEST(CpuEmbedding, LookupReadsTheRowOfEachSamplesClass) {
  CpuEnv env;
  const EmbeddingDims d{5, 4, 3};
  const auto table = randn(size_t(d.classes * d.dim), 1);
  auto label = one_hot_rows({1, 3, 0, 3, 2}, d.classes);
  label[0] = 0.5;  // not one-hot: row 0 is {0.5, 1, 0, 0}, its largest value still class 1
  std::vector<double> y(size_t(d.samples * d.dim), NAN);
  ops::embedding_forward<double>(env.ex, d, label.data(), table.data(), y.data());
  const int cls[] = {1, 3, 0, 3, 2};
  for (int s = 0; s < d.samples; ++s)
    for (int k = 0; k < d.dim; ++k) EXPECT_EQ(y[size_t(s * d.dim + k)], table[size_t(cls[s] * d.dim + k)]);
  // Ties: the first largest value.
  const std::vector<double> tie = {0, 1, 1, 0};
  std::vector<double> y1(size_t(d.dim));
  ops::embedding_forward<double>(env.ex, EmbeddingDims{1, 4, 3}, tie.data(), table.data(), y1.data());
  EXPECT_EQ(y1[0], table[size_t(1 * d.dim)]);
}

TEST(CpuEmbedding, TableGradientMatchesFiniteDifferencesAndAccumulates) {
  CpuEnv env;
  const EmbeddingDims d{6, 3, 4};
  const auto label = one_hot_rows({2, 0, 2, 1, 2, 0}, d.classes);
  auto table = randn(size_t(d.classes * d.dim), 2);
  const auto R = randn(size_t(d.samples * d.dim), 3);
  const auto scale = randn(size_t(d.samples), 4);
  for (bool scaled : {false, true}) {
    SCOPED_TRACE(scaled ? "scaled" : "plain");
    // L = sum_s (scale[s]) <R[s], y[s]>: its table gradient is embedding_backward(dy = R, scale).
    auto loss = [&] {
      std::vector<double> y(size_t(d.samples * d.dim));
      ops::embedding_forward<double>(env.ex, d, label.data(), table.data(), y.data());
      double l = 0;
      for (int64_t s = 0; s < d.samples; ++s)
        for (int k = 0; k < d.dim; ++k)
          l += (scaled ? scale[size_t(s)] : 1.0) * R[size_t(s * d.dim + k)] * y[size_t(s * d.dim + k)];
      return l;
    };
    const auto start = randn(table.size(), 5);
    auto dtable = start;
    ops::embedding_backward<double>(env.ex, d, label.data(), R.data(), scaled ? scale.data() : nullptr,
                                    dtable.data());
    std::vector<double> analytic(table.size());
    for (size_t i = 0; i < table.size(); ++i) analytic[i] = dtable[i] - start[i];
    EXPECT_LT(rel_err(analytic, numeric_grad(table, loss)), kGradTol);
  }
}

TEST(CpuProjection, ForwardAndBothGradientsMatchFiniteDifferences) {
  CpuEnv env;
  const EmbeddingDims d{5, 4, 6};
  const auto label = one_hot_rows({3, 1, 1, 0, 2}, d.classes);
  auto table = randn(size_t(d.classes * d.dim), 6);
  auto x = randn(size_t(d.samples * d.dim), 7);
  const auto R = randn(size_t(d.samples), 8);
  std::vector<double> y(size_t(d.samples), NAN);
  ops::projection_forward<double>(env.ex, d, label.data(), table.data(), x.data(), y.data());
  const int cls[] = {3, 1, 1, 0, 2};
  for (int s = 0; s < d.samples; ++s) {
    double want = 0;
    for (int k = 0; k < d.dim; ++k) want += table[size_t(cls[s] * d.dim + k)] * x[size_t(s * d.dim + k)];
    EXPECT_NEAR(y[size_t(s)], want, 1e-12);
  }
  auto loss = [&] {
    std::vector<double> yy(size_t(d.samples));
    ops::projection_forward<double>(env.ex, d, label.data(), table.data(), x.data(), yy.data());
    return dot(R, yy);
  };
  std::vector<double> dx(x.size(), NAN);
  ops::projection_backward<double>(env.ex, d, label.data(), table.data(), R.data(), dx.data(), false);
  EXPECT_LT(rel_err(dx, numeric_grad(x, loss)), kGradTol) << "dx";
  const auto dx0 = randn(x.size(), 9);
  auto acc = dx0;
  ops::projection_backward<double>(env.ex, d, label.data(), table.data(), R.data(), acc.data(), true);
  EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-15) << "accumulate_dx adds";
  std::vector<double> dtable(table.size(), 0.0);
  ops::embedding_backward<double>(env.ex, d, label.data(), x.data(), R.data(), dtable.data());
  EXPECT_LT(rel_err(dtable, numeric_grad(table, loss)), kGradTol) << "dtable";
}

}  // namespace
}  // namespace gancu::test
