// CPU layer normalization, in double: forward against direct loops; backward against finite
// differences; the jvp against the directional finite difference of forward; and the jvp's
// backward against finite differences of
//   S(x, gamma, beta, tx) = <dty, jvp(x, gamma; tx)> + <dy, forward(x, gamma, beta)>
// with respect to x, gamma, beta and tx, for features [n, c] and images [n, h, w, c], with the
// accumulate flags and the null pointers. Then float against double and thread-count
// independence on a critic-sized shape.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <string>

#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// Features [5, 6] and images [3, 2, 3, 4] (cols 24 over 4 channels).
const LayerNormDims kDims[] = {{5, 6, 6, 1e-5f}, {3, 24, 4, 1e-5f}};

std::string name(const LayerNormDims& d, const Activation& act) {
  return detail::concat(d.rows, "x", d.cols, " channels ", d.channels, " ", act_name(act.kind));
}

struct LnRef {
  std::vector<double> y, mean, invstd;
};

LnRef ln_ref(const LayerNormDims& d, const std::vector<double>& x, const std::vector<double>& gamma,
             const std::vector<double>& beta, Activation act) {
  const int64_t N = d.cols;
  LnRef r{std::vector<double>(x.size()), std::vector<double>(size_t(d.rows)),
          std::vector<double>(size_t(d.rows))};
  for (int64_t i = 0; i < d.rows; ++i) {
    double s = 0, ss = 0;
    for (int64_t j = 0; j < N; ++j) s += x[size_t(i * N + j)];
    const double mean = s / double(N);
    for (int64_t j = 0; j < N; ++j) ss += (x[size_t(i * N + j)] - mean) * (x[size_t(i * N + j)] - mean);
    r.mean[size_t(i)] = mean;
    r.invstd[size_t(i)] = 1 / std::sqrt(ss / double(N) + double(d.eps));
    for (int64_t j = 0; j < N; ++j) {
      const size_t c = size_t(j % d.channels);
      r.y[size_t(i * N + j)] =
          act_ref(gamma[c] * (x[size_t(i * N + j)] - mean) * r.invstd[size_t(i)] + beta[c], act);
    }
  }
  return r;
}

TEST(CpuLayerNorm, ForwardNormalizesEachRowAndScalesEachChannel) {
  CpuEnv env;
  for (const LayerNormDims& d : kDims)
    for (const Activation& act : all_activations()) {
      SCOPED_TRACE(name(d, act));
      auto x = randn(size_t(d.rows * d.cols), 1, 2.0);
      for (size_t i = 0; i < x.size(); ++i) x[i] += double(i / size_t(d.cols));  // per-row offsets
      const auto gamma = randn(size_t(d.channels), 2), beta = randn(size_t(d.channels), 3);
      const LnRef ref = ln_ref(d, x, gamma, beta, act);
      std::vector<double> y(x.size()), sm(size_t(d.rows)), si(size_t(d.rows));
      ops::layernorm_forward<double>(env.ex, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(),
                                     y.data(), act);
      EXPECT_LT(rel_err(y, ref.y), 1e-14);
      EXPECT_LT(rel_err(sm, ref.mean), 1e-14);
      EXPECT_LT(rel_err(si, ref.invstd), 1e-14);
      // Null gamma and beta mean 1 and 0.
      std::vector<double> y1(x.size());
      ops::layernorm_forward<double>(env.ex, d, x.data(), nullptr, nullptr, nullptr, nullptr, y1.data(), act);
      const LnRef plain = ln_ref(d, x, std::vector<double>(size_t(d.channels), 1.0),
                                 std::vector<double>(size_t(d.channels), 0.0), act);
      EXPECT_LT(rel_err(y1, plain.y), 1e-14);
    }
}

TEST(CpuLayerNorm, RejectsColumnsThatAreNotWholePositions) {
  CpuEnv env;
  std::vector<double> x(10), y(10);
  EXPECT_THROW(ops::layernorm_forward<double>(env.ex, LayerNormDims{2, 5, 2}, x.data(), nullptr, nullptr,
                                              nullptr, nullptr, y.data(), Activation{}),
               std::exception);
}

TEST(CpuLayerNorm, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  for (const LayerNormDims& d : kDims)
    for (const Activation& act : all_activations()) {
      SCOPED_TRACE(name(d, act));
      std::vector<double> sm(size_t(d.rows)), si(size_t(d.rows));
      auto forward = [&, d, act](const double* x, const double* g, const double* b, double* y) {
        ops::layernorm_forward<double>(env.ex, d, x, g, b, sm.data(), si.data(), y, act);
      };
      const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels);
      ParamLayer L{n,
                   C,
                   C,
                   n,
                   forward,
                   [&, d, act](const double* x, const double* g, const double* y, double* dy, double* dx,
                               bool acc, double* dg, double* db) {
                     std::vector<double> scratch(size_t(d.rows * d.cols));
                     forward(x, g, nullptr, scratch.data());  // the saved stats of this x
                     ops::layernorm_backward<double>(env.ex, d, x, g, sm.data(), si.data(), y, dy, dx, acc,
                                                     dg, db, act);
                   }};
      check_layer_gradients(L, 40 + uint64_t(d.cols));
    }
}

// Inputs of one jvp check: x, gamma, beta, the tangent tx, and the adjoints dty and dy.
struct JvpCase {
  LayerNormDims d;
  Activation act;
  std::vector<double> x, gamma, beta, tx, dty, dy;
  std::vector<double> sm, si;

  JvpCase(const LayerNormDims& dims, const Activation& a, uint64_t seed) : d(dims), act(a) {
    const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels);
    x = randn(n, seed, 1.5);
    gamma = randn(C, seed + 1);
    beta = randn(C, seed + 2, 0.5);
    tx = randn(n, seed + 3);
    dty = randn(n, seed + 4);
    dy = randn(n, seed + 5);
    sm.resize(size_t(d.rows));
    si.resize(size_t(d.rows));
  }
  std::vector<double> forward(const Exec& ex) {
    std::vector<double> y(x.size());
    ops::layernorm_forward<double>(ex, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(), y.data(),
                                   act);
    return y;
  }
  // ty at the current x (runs forward first for the statistics).
  std::vector<double> jvp(const Exec& ex) {
    const auto y = forward(ex);
    std::vector<double> ty(x.size(), NAN);
    ops::layernorm_jvp<double>(ex, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), tx.data(),
                               ty.data(), act);
    return ty;
  }
  double objective(const Exec& ex, bool with_dy) {
    const double s = dot(dty, jvp(ex));
    return with_dy ? s + dot(dy, forward(ex)) : s;
  }
};

TEST(CpuLayerNorm, JvpIsTheDirectionalDerivativeOfForward) {
  CpuEnv env;
  for (const LayerNormDims& d : kDims)
    for (const Activation& act : all_activations()) {
      SCOPED_TRACE(name(d, act));
      JvpCase k(d, act, 60);
      const auto ty = k.jvp(env.ex);
      const auto x0 = k.x;
      for (size_t i = 0; i < x0.size(); ++i) k.x[i] = x0[i] + kFdEps * k.tx[i];
      const auto up = k.forward(env.ex);
      for (size_t i = 0; i < x0.size(); ++i) k.x[i] = x0[i] - kFdEps * k.tx[i];
      const auto down = k.forward(env.ex);
      std::vector<double> fd(ty.size());
      for (size_t i = 0; i < fd.size(); ++i) fd[i] = (up[i] - down[i]) / (2 * kFdEps);
      EXPECT_LT(rel_err(ty, fd), kGradTol);
    }
}

// The jvp's backward from (x, gamma, beta, tx): its adjoints, with every output requested.
struct JvpGrads {
  std::vector<double> dtx, dx, dgamma, dbeta;
};

JvpGrads jvp_backward(const Exec& ex, JvpCase& k, bool with_dy, JvpGrads start, bool acc_dtx, bool acc_dx,
                      bool want_dtx = true, bool want_dx = true, bool want_params = true) {
  const auto y = k.forward(ex);
  std::vector<double> ty(y.size());
  ops::layernorm_jvp<double>(ex, k.d, k.x.data(), k.gamma.data(), k.sm.data(), k.si.data(), y.data(),
                             k.tx.data(), ty.data(), k.act);
  std::vector<double> dty = k.dty;  // may be overwritten
  ops::layernorm_jvp_backward<double>(
      ex, k.d, k.x.data(), k.gamma.data(), k.sm.data(), k.si.data(), y.data(), k.tx.data(), ty.data(),
      dty.data(), with_dy ? k.dy.data() : nullptr, want_dtx ? start.dtx.data() : nullptr, acc_dtx,
      want_dx ? start.dx.data() : nullptr, acc_dx, want_params ? start.dgamma.data() : nullptr,
      want_params ? start.dbeta.data() : nullptr, k.act);
  return start;
}

JvpGrads fresh_grads(const JvpCase& k, double fill) {
  return JvpGrads{std::vector<double>(k.x.size(), fill), std::vector<double>(k.x.size(), fill),
                  std::vector<double>(k.gamma.size(), 0.0), std::vector<double>(k.beta.size(), 0.0)};
}

TEST(CpuLayerNorm, JvpBackwardMatchesFiniteDifferences) {
  CpuEnv env;
  const Activation acts[] = {Activation{Act::None}, Activation{Act::LeakyReLU, 0.2f}, Activation{Act::Tanh},
                             Activation{Act::Sigmoid}, Activation{Act::ReLU}};
  for (const LayerNormDims& d : kDims)
    for (const Activation& act : acts)
      for (bool with_dy : {true, false}) {
        SCOPED_TRACE(name(d, act) + (with_dy ? " with dy" : " without dy"));
        JvpCase k(d, act, 80 + uint64_t(d.cols));
        const JvpGrads g = jvp_backward(env.ex, k, with_dy, fresh_grads(k, NAN), false, false);
        auto S = [&] { return k.objective(env.ex, with_dy); };
        EXPECT_LT(rel_err(g.dtx, numeric_grad(k.tx, S)), kGradTol) << "dtx";
        EXPECT_LT(rel_err(g.dx, numeric_grad(k.x, S)), kGradTol) << "dx";
        EXPECT_LT(rel_err(g.dgamma, numeric_grad(k.gamma, S)), kGradTol) << "dgamma";
        const auto ndbeta = numeric_grad(k.beta, S);
        EXPECT_LT(rel_err(g.dbeta, ndbeta), kGradTol) << "dbeta";
      }
}

// Accumulation: dtx and dx add when asked, dgamma and dbeta always. Nulls: each output alone
// equals its value in the full call.
TEST(CpuLayerNorm, JvpBackwardAccumulatesAndSkipsNullOutputs) {
  CpuEnv env;
  for (const LayerNormDims& d : kDims)
    for (const Activation& act : {Activation{Act::Tanh}, Activation{Act::LeakyReLU, 0.2f}}) {
      SCOPED_TRACE(name(d, act));
      JvpCase k(d, act, 99);
      const JvpGrads full = jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false);
      JvpGrads start{randn(k.x.size(), 1), randn(k.x.size(), 2), randn(k.gamma.size(), 3),
                     randn(k.beta.size(), 4)};
      const JvpGrads acc = jvp_backward(env.ex, k, true, start, true, true);
      EXPECT_LT(rel_err(acc.dtx, add(start.dtx, full.dtx)), 1e-14) << "dtx accumulates when asked";
      EXPECT_LT(rel_err(acc.dx, add(start.dx, full.dx)), 1e-14) << "dx accumulates when asked";
      EXPECT_LT(rel_err(acc.dgamma, add(start.dgamma, full.dgamma)), 1e-14) << "dgamma accumulates";
      EXPECT_LT(rel_err(acc.dbeta, add(start.dbeta, full.dbeta)), 1e-14) << "dbeta accumulates";

      const JvpGrads no_dx = jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false, true, false);
      EXPECT_EQ(no_dx.dtx, full.dtx) << "dx null: dtx unchanged";
      EXPECT_EQ(no_dx.dgamma, full.dgamma) << "dx null: dgamma keeps both terms";
      EXPECT_EQ(no_dx.dbeta, full.dbeta);
      const JvpGrads no_dtx = jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false, false, true);
      EXPECT_EQ(no_dtx.dx, full.dx) << "dtx null: dx unchanged";
      const JvpGrads only_params =
          jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false, false, false);
      EXPECT_EQ(only_params.dgamma, full.dgamma);
      EXPECT_EQ(only_params.dbeta, full.dbeta);
      const JvpGrads no_params =
          jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false, true, true, false);
      EXPECT_EQ(no_params.dx, full.dx) << "dgamma, dbeta null";
      EXPECT_EQ(no_params.dtx, full.dtx);

      // dy null is dy = 0.
      const JvpGrads null_dy = jvp_backward(env.ex, k, false, fresh_grads(k, NAN), false, false);
      k.dy.assign(k.dy.size(), 0.0);
      const JvpGrads zero_dy = jvp_backward(env.ex, k, true, fresh_grads(k, NAN), false, false);
      EXPECT_EQ(null_dy.dx, zero_dy.dx);
      EXPECT_EQ(null_dy.dgamma, zero_dy.dgamma);
      EXPECT_EQ(null_dy.dbeta, zero_dy.dbeta);
    }
}

// A piecewise-linear activation without dy: no primal adjoint beyond the normalization's own
// second-order terms, and no beta gradient (the tangent has no offset).
TEST(CpuLayerNorm, JvpBackwardOfAPiecewiseLinearLayerGivesNoBetaGradient) {
  CpuEnv env;
  JvpCase k(kDims[1], Activation{Act::LeakyReLU, 0.2f}, 7);
  const JvpGrads g = jvp_backward(env.ex, k, false, fresh_grads(k, NAN), false, false);
  EXPECT_EQ(g.dbeta, std::vector<double>(k.beta.size(), 0.0));
  double norm = 0;
  for (double v : g.dx) norm += v * v;
  EXPECT_GT(norm, 1e-6) << "layer norm itself is not linear: dx has second-order terms";
}

// A critic-sized batch [64, 7, 7, 32]: float against double (forward, backward, jvp and its
// backward), and bit-identical results at 1 and 2 threads (the parameter gradients are
// reduced over parts fixed by the size).
TEST(CpuLayerNorm, CriticShapeFloatMatchesDoubleAndIgnoresThreadCount) {
  CpuEnv env;
  const LayerNormDims d{64, 7 * 7 * 32, 32};
  const Activation act{Act::LeakyReLU, 0.2f};
  const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels), R = size_t(d.rows);
  auto x = randn(n, 1, 2.0);
  for (double& v : x) v += 3.0;
  const auto gamma = randn(C, 2), beta = randn(C, 3), tx = randn(n, 4), dty0 = randn(n, 5), dy0 = randn(n, 6);

  struct Out {
    std::vector<double> y, dx, dg, db, ty, jdtx, jdx, jdg, jdb;
  };
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto xt = cast<T>(x), gt = cast<T>(gamma), bt = cast<T>(beta), txt = cast<T>(tx),
               dyt = cast<T>(dy0);
    std::vector<T> y(n), sm(R), si(R), dy = dyt, dx(n), dg(C, T(0)), db(C, T(0)), ty(n), dty = cast<T>(dty0),
                                       jdtx(n), jdx(n), jdg(C, T(0)), jdb(C, T(0));
    ops::layernorm_forward<T>(env.ex, d, xt.data(), gt.data(), bt.data(), sm.data(), si.data(), y.data(),
                              act);
    ops::layernorm_backward<T>(env.ex, d, xt.data(), gt.data(), sm.data(), si.data(), y.data(), dy.data(),
                               dx.data(), false, dg.data(), db.data(), act);
    ops::layernorm_jvp<T>(env.ex, d, xt.data(), gt.data(), sm.data(), si.data(), y.data(), txt.data(),
                          ty.data(), act);
    ops::layernorm_jvp_backward<T>(env.ex, d, xt.data(), gt.data(), sm.data(), si.data(), y.data(),
                                   txt.data(), ty.data(), dty.data(), dyt.data(), jdtx.data(), false,
                                   jdx.data(), false, jdg.data(), jdb.data(), act);
    return Out{cast<double>(y),    cast<double>(dx),  cast<double>(dg),  cast<double>(db), cast<double>(ty),
               cast<double>(jdtx), cast<double>(jdx), cast<double>(jdg), cast<double>(jdb)};
  };
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Out one = run(0.0f);
  omp_set_num_threads(2);
  const Out two = run(0.0f);
  omp_set_num_threads(threads_before);
  const Out ref = run(0.0);
  const std::vector<double> Out::*fields[] = {&Out::y,    &Out::dx,  &Out::dg,  &Out::db, &Out::ty,
                                              &Out::jdtx, &Out::jdx, &Out::jdg, &Out::jdb};
  for (size_t f = 0; f < std::size(fields); ++f) {
    EXPECT_LT(rel_err(one.*fields[f], ref.*fields[f]), 1e-5) << "output " << f << ": float against double";
    EXPECT_EQ(one.*fields[f], two.*fields[f]) << "output " << f << ": 1 thread against 2";
  }
}

}  // namespace
}  // namespace gancu::test
