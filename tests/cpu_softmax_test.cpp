// CPU softmax and softmax cross-entropy: the direct formula, rows summing to 1, the loss value,
// the gradient against finite differences in double, the correct count (ties: the first maximum),
// logits of +-1000, grad_scale, null outputs skipped, and out-of-range labels.
#include <gtest/gtest.h>

#include <limits>

#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// exp(l_j) / sum exp(l) for moderate logits (no shift needed in double).
std::vector<double> softmax_direct(const std::vector<double>& l, int64_t n, int classes) {
  std::vector<double> p(l.size());
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < classes; ++j) s += std::exp(l[size_t(i * classes + j)]);
    for (int j = 0; j < classes; ++j) p[size_t(i * classes + j)] = std::exp(l[size_t(i * classes + j)]) / s;
  }
  return p;
}

std::vector<int32_t> random_labels(int64_t n, int classes, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int32_t(gen() % uint32_t(classes));
  return v;
}

TEST(CpuSoftmax, RowsSumToOneAndMatchTheDirectFormula) {
  CpuEnv env;
  for (auto [n, classes] : {std::pair<int64_t, int>{1, 1}, {5, 10}, {37, 3}, {300, 1000}}) {
    const auto l = randn(size_t(n * classes), uint64_t(classes), 3.0);
    const auto want = softmax_direct(l, n, classes);
    std::vector<double> p(l.size(), NAN);
    ops::softmax<double>(env.ex, n, classes, l.data(), p.data());
    EXPECT_LT(rel_err(p, want), 1e-14) << n << "x" << classes;
    const auto lf = cast<float>(l);
    std::vector<float> pf(l.size(), NAN);
    ops::softmax<float>(env.ex, n, classes, lf.data(), pf.data());
    EXPECT_LT(rel_err(pf, softmax_direct(cast<double>(lf), n, classes)), 1e-6) << n << "x" << classes;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0, sf = 0;
      for (int j = 0; j < classes; ++j) {
        s += p[size_t(i * classes + j)];
        sf += pf[size_t(i * classes + j)];
      }
      EXPECT_NEAR(s, 1.0, 1e-13);
      EXPECT_NEAR(sf, 1.0, 1e-5);
    }
  }
}

TEST(CpuSoftmax, LargeLogitsStayFinite) {
  CpuEnv env;
  const std::vector<float> l = {1000.0f, -1000.0f, 0.0f, 1000.0f, -1000.0f, -1000.0f};
  std::vector<float> p(6);
  ops::softmax<float>(env.ex, 2, 3, l.data(), p.data());
  EXPECT_EQ(p, (std::vector<float>{1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f}));
}

// mean_i -log softmax(l_i)[label_i], in double through the direct formula.
double ce_direct(const std::vector<double>& l, const std::vector<int32_t>& labels, int classes) {
  const int64_t n = int64_t(labels.size());
  const auto p = softmax_direct(l, n, classes);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s -= std::log(p[size_t(i * classes + labels[size_t(i)])]);
  return s / double(n);
}

int correct_direct(const std::vector<double>& l, const std::vector<int32_t>& labels, int classes) {
  int c = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    int best = 0;
    for (int j = 1; j < classes; ++j)
      if (l[i * classes + j] > l[i * classes + best]) best = j;
    c += best == labels[i];
  }
  return c;
}

TEST(CpuSoftmaxCrossEntropy, ValueAndCorrectCountAccumulate) {
  CpuEnv env;
  for (auto [n, classes] : {std::pair<int64_t, int>{1, 2}, {64, 10}, {1001, 7}}) {
    const auto l = randn(size_t(n * classes), 3, 2.0);
    const auto labels = random_labels(n, classes, 4);
    double loss = 1.5, correct = 2.0;  // the op adds onto what is there
    ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, nullptr, &loss,
                                       &correct);
    EXPECT_NEAR(loss, 1.5 + ce_direct(l, labels, classes), 1e-12);
    EXPECT_EQ(correct, 2.0 + correct_direct(l, labels, classes));
    const auto lf = cast<float>(l);
    float lossf = 0, correctf = 0;
    ops::softmax_cross_entropy<float>(env.ex, n, classes, lf.data(), labels.data(), 1.0f, nullptr, &lossf,
                                      &correctf);
    EXPECT_NEAR(lossf, ce_direct(cast<double>(lf), labels, classes), 1e-5);
    EXPECT_EQ(correctf, float(correct_direct(cast<double>(lf), labels, classes)));
  }
}

TEST(CpuSoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  CpuEnv env;
  const int64_t n = 9;
  const int classes = 5;
  const float scale = 0.75f;
  auto l = randn(size_t(n * classes), 5, 2.0);
  const auto labels = random_labels(n, classes, 6);
  auto loss = [&] {
    double s = 0;
    ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), scale, nullptr, &s,
                                       nullptr);
    return double(scale) * s;
  };
  std::vector<double> d(l.size(), NAN);
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), scale, d.data(), nullptr,
                                     nullptr);
  EXPECT_LT(rel_err(d, numeric_grad(l, loss)), kGradTol);
  // grad_scale is linear: twice the scale, twice the gradient.
  std::vector<double> d2(l.size());
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 2 * scale, d2.data(),
                                     nullptr, nullptr);
  for (double& v : d) v *= 2;
  EXPECT_LT(rel_err(d2, d), 1e-15);
}

TEST(CpuSoftmaxCrossEntropy, LargeLogitsStayFinite) {
  CpuEnv env;
  // Row 0: label 1 at -1000 against 1000: loss 2000. Row 1: label 0 holds the max: loss ~0.
  const std::vector<float> l = {1000.0f, -1000.0f, 0.0f, 1000.0f, -1000.0f, -1000.0f};
  const std::vector<int32_t> labels = {1, 0};
  std::vector<float> d(6, NAN);
  float loss = 0, correct = 0;
  ops::softmax_cross_entropy<float>(env.ex, 2, 3, l.data(), labels.data(), 1.0f, d.data(), &loss, &correct);
  EXPECT_NEAR(loss, 1000.0f, 1e-3f);  // (2000 + 0) / 2
  EXPECT_EQ(correct, 1.0f);
  for (float v : d) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(d, (std::vector<float>{0.5f, -0.5f, 0.0f, 0.0f, 0.0f, 0.0f}));
}

TEST(CpuSoftmaxCrossEntropy, TiesCountTheFirstMaximum) {
  CpuEnv env;
  const std::vector<double> l = {2, 5, 5, 1, 1, 1};
  double correct = 0;
  const std::vector<int32_t> first = {1, 0}, second = {2, 1};
  ops::softmax_cross_entropy<double>(env.ex, 2, 3, l.data(), first.data(), 1.0f, nullptr, nullptr, &correct);
  EXPECT_EQ(correct, 2.0);
  correct = 0;
  ops::softmax_cross_entropy<double>(env.ex, 2, 3, l.data(), second.data(), 1.0f, nullptr, nullptr, &correct);
  EXPECT_EQ(correct, 0.0);
}

TEST(CpuSoftmaxCrossEntropy, NullOutputsAreSkipped) {
  CpuEnv env;
  const int64_t n = 20;
  const int classes = 4;
  const auto l = randn(size_t(n * classes), 7);
  const auto labels = random_labels(n, classes, 8);
  std::vector<double> d_all(l.size()), d_only(l.size());
  double loss_all = 0, correct_all = 0, loss_only = 0, correct_only = 0;
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, d_all.data(),
                                     &loss_all, &correct_all);
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, d_only.data(),
                                     nullptr, nullptr);
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, nullptr, &loss_only,
                                     nullptr);
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, nullptr, nullptr,
                                     &correct_only);
  ops::softmax_cross_entropy<double>(env.ex, n, classes, l.data(), labels.data(), 1.0f, nullptr, nullptr,
                                     nullptr);
  EXPECT_EQ(d_only, d_all);
  EXPECT_EQ(loss_only, loss_all);
  EXPECT_EQ(correct_only, correct_all);
  ops::softmax_cross_entropy<double>(env.ex, 0, classes, nullptr, nullptr, 1.0f, nullptr, &loss_only,
                                     nullptr);
  EXPECT_EQ(loss_only, loss_all) << "n = 0 adds nothing";
}

TEST(CpuSoftmaxCrossEntropy, OutOfRangeLabelsThrowAndWriteNothing) {
  CpuEnv env;
  const std::vector<float> l = {1, 2, 3, 4, 5, 6};
  for (int32_t bad : {-1, 3, 1000}) {
    const std::vector<int32_t> labels = {0, bad};
    std::vector<float> d(6, 7.0f);
    float loss = 1.0f, correct = 2.0f;
    try {
      ops::softmax_cross_entropy<float>(env.ex, 2, 3, l.data(), labels.data(), 1.0f, d.data(), &loss,
                                        &correct);
      ADD_FAILURE() << "no error for label " << bad;
    } catch (const RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("label " + std::to_string(bad) + " of row 1"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(d, std::vector<float>(6, 7.0f));
    EXPECT_EQ(loss, 1.0f);
    EXPECT_EQ(correct, 2.0f);
  }
}

}  // namespace
}  // namespace gancu::test
