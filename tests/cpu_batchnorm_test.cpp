// CPU batch normalization: PyTorch's forward semantics in each mode, backward against finite
// differences, and reductions that do not depend on the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

struct BnRef {
  std::vector<double> y, mean, invstd, var_unbiased;
};

BnRef bn_ref(const BatchNormDims& d, const std::vector<double>& x, const std::vector<double>& gamma,
             const std::vector<double>& beta, Activation act) {
  const int64_t N = d.count, C = d.channels;
  BnRef r{std::vector<double>(x.size()), std::vector<double>(C), std::vector<double>(C),
          std::vector<double>(C)};
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t i = 0; i < N; ++i) s += x[i * C + c];
    const double mean = s / N;
    for (int64_t i = 0; i < N; ++i) ss += (x[i * C + c] - mean) * (x[i * C + c] - mean);
    r.mean[c] = mean;
    r.invstd[c] = 1 / std::sqrt(ss / N + double(d.eps));
    r.var_unbiased[c] = ss / (N - 1);
    for (int64_t i = 0; i < N; ++i)
      r.y[i * C + c] = act_ref(gamma[c] * (x[i * C + c] - mean) * r.invstd[c] + beta[c], act);
  }
  return r;
}

TEST(CpuBatchNorm, TrainForwardNormalizesWithBatchStatsAndUpdatesRunningStats) {
  CpuEnv env;
  const BatchNormDims d{24, 5, 0.1f, 1e-5f};
  for (const Activation& act : all_activations()) {
    SCOPED_TRACE(act_name(act.kind));
    auto x = randn(size_t(d.count * d.channels), 1, 2.0);
    for (size_t i = 0; i < x.size(); ++i) x[i] += double(i % d.channels);  // per-channel offsets
    const auto gamma = randn(size_t(d.channels), 2), beta = randn(size_t(d.channels), 3);
    const auto rm0 = randn(size_t(d.channels), 4),
               rv0 = add(randn(size_t(d.channels), 5, 0.1), std::vector<double>(5, 1.0));
    const BnRef ref = bn_ref(d, x, gamma, beta, act);

    std::vector<double> y(x.size()), rm = rm0, rv = rv0, sm(size_t(d.channels)), si(size_t(d.channels));
    ops::batchnorm_forward<double>(env.ex, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(),
                                   rm.data(), rv.data(), sm.data(), si.data(), y.data(), act);
    EXPECT_LT(rel_err(y, ref.y), 1e-13);
    EXPECT_LT(rel_err(sm, ref.mean), 1e-14);
    EXPECT_LT(rel_err(si, ref.invstd), 1e-14);
    for (int c = 0; c < d.channels; ++c) {
      EXPECT_NEAR(rm[c], (1 - double(d.momentum)) * rm0[c] + double(d.momentum) * ref.mean[c], 1e-14);
      EXPECT_NEAR(rv[c], (1 - double(d.momentum)) * rv0[c] + double(d.momentum) * ref.var_unbiased[c], 1e-14)
          << "running var is unbiased";
    }

    // BatchOnly: same output and saved stats, running stats untouched.
    std::vector<double> y2(x.size()), rm2 = rm0, rv2 = rv0, sm2(size_t(d.channels)), si2(size_t(d.channels));
    ops::batchnorm_forward<double>(env.ex, d, BatchNormMode::BatchOnly, x.data(), gamma.data(), beta.data(),
                                   rm2.data(), rv2.data(), sm2.data(), si2.data(), y2.data(), act);
    EXPECT_EQ(y2, y);
    EXPECT_EQ(sm2, sm);
    EXPECT_EQ(si2, si);
    EXPECT_EQ(rm2, rm0);
    EXPECT_EQ(rv2, rv0);
  }
}

TEST(CpuBatchNorm, EvalForwardUsesRunningStats) {
  CpuEnv env;
  const BatchNormDims d{10, 3, 0.1f, 1e-3f};
  const auto x = randn(30, 1), gamma = randn(3, 2), beta = randn(3, 3);
  const std::vector<double> rm = {0.5, -1.0, 2.0}, rv = {0.25, 4.0, 1.5};
  std::vector<double> y(30), rm_after = rm, rv_after = rv, sm(3, 42.0), si(3, 42.0);
  const Activation act{Act::Tanh};
  ops::batchnorm_forward<double>(env.ex, d, BatchNormMode::Eval, x.data(), gamma.data(), beta.data(),
                                 rm_after.data(), rv_after.data(), sm.data(), si.data(), y.data(), act);
  for (int i = 0; i < 10; ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(y[i * 3 + c],
                  std::tanh(gamma[c] * (x[i * 3 + c] - rm[c]) / std::sqrt(rv[c] + double(d.eps)) + beta[c]),
                  1e-14);
  EXPECT_EQ(rm_after, rm);
  EXPECT_EQ(rv_after, rv);
  EXPECT_EQ(sm, std::vector<double>(3, 42.0)) << "eval mode must not touch the saved stats";
  EXPECT_EQ(si, std::vector<double>(3, 42.0));
}

TEST(CpuBatchNorm, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  for (const BatchNormDims& d : {BatchNormDims{12, 5}, BatchNormDims{7, 3}, BatchNormDims{3, 4}})
    for (const Activation& act : all_activations()) {
      SCOPED_TRACE(testing::Message() << d.count << "x" << d.channels << " " << act_name(act.kind));
      std::vector<double> sm(size_t(d.channels)), si(size_t(d.channels));
      // x = x, w = gamma, b = beta. Forward in BatchOnly mode: batch statistics (what train-mode
      // backward differentiates) without moving running statistics between evaluations.
      auto forward = [&, d, act](const double* x, const double* g, const double* b, double* y) {
        ops::batchnorm_forward<double>(env.ex, d, BatchNormMode::BatchOnly, x, g, b, nullptr, nullptr,
                                       sm.data(), si.data(), y, act);
      };
      ParamLayer L{size_t(d.count * d.channels),
                   size_t(d.channels),
                   size_t(d.channels),
                   size_t(d.count * d.channels),
                   forward,
                   [&, d, act](const double* x, const double* g, const double* y, double* dy, double* dx,
                               bool acc, double* dg, double* db) {
                     std::vector<double> scratch(size_t(d.count * d.channels));
                     forward(x, g, nullptr, scratch.data());  // saved stats of this x
                     ops::batchnorm_backward<double>(env.ex, d, x, g, sm.data(), si.data(), y, dy, dx, acc,
                                                     dg, db, act);
                   }};
      check_layer_gradients(L, 77 + d.count);
    }
}

// The float path against the double one on a batch large enough for multi-part reductions, and
// bit-identical results for 1 and 2 threads (partials are split by size, not by thread).
TEST(CpuBatchNorm, LargeBatchFloatMatchesDoubleAndIgnoresThreadCount) {
  CpuEnv env;
  const BatchNormDims d{64 * 7 * 7, 128};
  const Activation act{Act::ReLU};
  auto x = randn(size_t(d.count * d.channels), 1, 3.0);
  for (double& v : x) v += 5.0;  // a mean large against the spread
  const auto gamma = randn(128, 2), beta = randn(128, 3), g = randn(x.size(), 4);
  const BnRef ref = bn_ref(d, x, gamma, beta, act);
  const auto xf = cast<float>(x), gf = cast<float>(gamma), bf = cast<float>(beta);

  struct Out {
    std::vector<float> y, dx, dg, db;
  };
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Out o{std::vector<float>(x.size()), std::vector<float>(x.size()), std::vector<float>(128),
          std::vector<float>(128)};
    std::vector<float> rm(128), rv(128, 1.0f), sm(128), si(128);
    ops::batchnorm_forward<float>(env.ex, d, BatchNormMode::Train, xf.data(), gf.data(), bf.data(), rm.data(),
                                  rv.data(), sm.data(), si.data(), o.y.data(), act);
    auto dy = cast<float>(g);
    ops::batchnorm_backward<float>(env.ex, d, xf.data(), gf.data(), sm.data(), si.data(), o.y.data(),
                                   dy.data(), o.dx.data(), false, o.dg.data(), o.db.data(), act);
    return o;
  };
  const int threads_before = omp_get_max_threads();
  const Out one = run(1), two = run(2);
  omp_set_num_threads(threads_before);
  EXPECT_LT(rel_err(one.y, ref.y), 1e-5);
  EXPECT_EQ(0, std::memcmp(one.y.data(), two.y.data(), one.y.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(one.dx.data(), two.dx.data(), one.dx.size() * sizeof(float)));
  EXPECT_EQ(one.dg, two.dg);
  EXPECT_EQ(one.db, two.db);

  // Backward in double for the float comparison.
  std::vector<double> yd(x.size()), dxd(x.size()), dgd(128), dbd(128), sm(128), si(128);
  ops::batchnorm_forward<double>(env.ex, d, BatchNormMode::BatchOnly, x.data(), gamma.data(), beta.data(),
                                 nullptr, nullptr, sm.data(), si.data(), yd.data(), act);
  auto dy = g;
  ops::batchnorm_backward<double>(env.ex, d, x.data(), gamma.data(), sm.data(), si.data(), yd.data(),
                                  dy.data(), dxd.data(), false, dgd.data(), dbd.data(), act);
  EXPECT_LT(rel_err(one.dx, dxd), 1e-5);
  EXPECT_LT(rel_err(one.dg, dgd), 1e-5);
  EXPECT_LT(rel_err(one.db, dbd), 1e-5);
}

}  // namespace
}  // namespace gancu::test
