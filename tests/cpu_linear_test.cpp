// CPU gemm and linear layer: forward against direct loops, backward against finite differences.
#include <gtest/gtest.h>

#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

std::vector<double> linear_ref(const LinearDims& d, const std::vector<double>& x,
                               const std::vector<double>& w, const double* b, Activation act) {
  std::vector<double> y(size_t(d.batch) * d.out);
  for (int n = 0; n < d.batch; ++n)
    for (int o = 0; o < d.out; ++o) {
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < d.in; ++i) s += x[size_t(n) * d.in + i] * w[size_t(o) * d.in + i];
      y[size_t(n) * d.out + o] = act_ref(s, act);
    }
  return y;
}

TEST(CpuGemm, MatchesDirectLoopsForEveryTransposeAndBeta) {
  CpuEnv env;
  const int m = 5, n = 7, k = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // Padded leading dimensions: lda/ldb/ldc larger than the rows they hold.
      const int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
      const std::vector<double> a = randn(size_t((ta ? k : m) * lda), 1),
                                b = randn(size_t((tb ? n : k) * ldb), 2);
      std::vector<double> c = randn(size_t(m * ldc), 3), ref = c;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int l = 0; l < k; ++l)
            s += (ta ? a[l * lda + i] : a[i * lda + l]) * (tb ? b[j * ldb + l] : b[l * ldb + j]);
          ref[i * ldc + j] = 1.5 * s + 0.5 * ref[i * ldc + j];
        }
      ops::gemm<double>(env.ex, ta, tb, m, n, k, 1.5, a.data(), lda, b.data(), ldb, 0.5, c.data(), ldc);
      EXPECT_LT(rel_err(c, ref), 1e-14) << "ta=" << ta << " tb=" << tb;
    }
}

TEST(CpuLinear, ForwardMatchesDirectLoops) {
  CpuEnv env;
  const LinearDims shapes[] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 100, 256}};
  uint64_t seed = 10;
  for (const LinearDims& d : shapes)
    for (const Activation& act : all_activations())
      for (bool bias : {false, true}) {
        const auto x = randn(size_t(d.batch) * d.in, seed++), w = randn(size_t(d.out) * d.in, seed++, 0.3),
                   b = randn(size_t(d.out), seed++);
        const auto ref = linear_ref(d, x, w, bias ? b.data() : nullptr, act);
        std::vector<double> y(ref.size());
        ops::linear_forward<double>(env.ex, d, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), act);
        EXPECT_LT(rel_err(y, ref), 1e-13)
            << d.batch << "x" << d.in << "->" << d.out << " " << act_name(act.kind);
        // The float path against the double reference: fp32 rounding only.
        const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b);
        std::vector<float> yf(ref.size());
        ops::linear_forward<float>(env.ex, d, xf.data(), wf.data(), bias ? bf.data() : nullptr, yf.data(),
                                   act);
        EXPECT_LT(rel_err(yf, ref), 1e-5);
      }
}

TEST(CpuLinear, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  const LinearDims shapes[] = {{1, 3, 2}, {4, 5, 3}, {7, 6, 9}};
  uint64_t seed = 100;
  for (const LinearDims& d : shapes)
    for (const Activation& act : all_activations()) {
      SCOPED_TRACE(testing::Message()
                   << d.batch << "x" << d.in << "->" << d.out << " " << act_name(act.kind));
      ParamLayer L{
          size_t(d.batch) * d.in,
          size_t(d.out) * d.in,
          size_t(d.out),
          size_t(d.batch) * d.out,
          [&](const double* x, const double* w, const double* b, double* y) {
            ops::linear_forward<double>(env.ex, d, x, w, b, y, act);
          },
          [&](const double* x, const double* w, const double* y, double* dy, double* dx, bool acc, double* dw,
              double* db) { ops::linear_backward<double>(env.ex, d, x, w, y, dy, dx, acc, dw, db, act); }};
      check_layer_gradients(L, seed);
      seed += 10;
    }
}

}  // namespace
}  // namespace gancu::test
