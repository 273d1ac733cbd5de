// Shared helpers of the CPU op tests: random data, error measures, finite differences, and a
// gradient checker for layers with an input, a weight and a bias.
//
// Gradient checks run in double: central differences with eps = 1e-6 have a truncation error of
// order eps^2 ~ 1e-12 and a rounding error of order 1e-16 |L| / eps ~ 1e-10 |L|, so a relative
// error bound of 1e-6 (norm of the difference over the norm of the gradient) leaves a wide margin
// for correct code while any wrong term (a missed tap, a wrong sign, a wrong scale) fails by
// orders of magnitude.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "gancu/exec.h"
#include "gancu/op_types.h"

namespace gancu::test {

constexpr double kFdEps = 1e-6;
constexpr double kGradTol = 1e-6;  // relative error of a finite-difference gradient check

inline std::vector<double> randn(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

template <class To, class From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ||a - b|| / max(||a||, ||b||); 0 when both are 0.
template <class A, class B>
double rel_err(const std::vector<A>& a, const std::vector<B>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double x = double(a[i]), y = double(b[i]);
    diff += (x - y) * (x - y);
    na += x * x;
    nb += y * y;
  }
  const double n = std::sqrt(std::max(na, nb));
  return n == 0 ? 0.0 : std::sqrt(diff) / n;
}

inline std::vector<double> add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> s(a);
  for (size_t i = 0; i < s.size(); ++i) s[i] += b[i];
  return s;
}

// Central-difference gradient of loss() w.r.t. every element of v (v is restored).
inline std::vector<double> numeric_grad(std::vector<double>& v, const std::function<double()>& loss,
                                        double eps = kFdEps) {
  std::vector<double> g(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + eps;
    const double up = loss();
    v[i] = keep - eps;
    const double down = loss();
    v[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

inline double act_ref(double x, Activation a) {
  switch (a.kind) {
    case Act::None:
      return x;
    case Act::ReLU:
      return x > 0 ? x : 0;
    case Act::LeakyReLU:
      return x > 0 ? x : double(a.slope) * x;
    case Act::Tanh:
      return std::tanh(x);
    case Act::Sigmoid:
      return 1 / (1 + std::exp(-x));
  }
  return x;
}

inline std::vector<Activation> all_activations() {
  return {Activation{Act::None}, Activation{Act::ReLU}, Activation{Act::LeakyReLU, 0.2f},
          Activation{Act::Tanh}, Activation{Act::Sigmoid}};
}

// A CPU Exec with a workspace that grows on demand.
struct CpuEnv {
  Exec ex = Exec::cpu();
  std::vector<double> ws;
  void reserve(size_t bytes) {
    if (ws.size() * sizeof(double) < bytes) ws.resize(bytes / sizeof(double) + 1);
    ex.set_workspace(ws.data(), ws.size() * sizeof(double));
  }
};

// A layer y = act(f(x, w) + b) with its backward, in double.
struct ParamLayer {
  size_t x_n, w_n, b_n, y_n;
  std::function<void(const double* x, const double* w, const double* b, double* y)> forward;
  std::function<void(const double* x, const double* w, const double* y, double* dy, double* dx, bool acc,
                     double* dw, double* db)>
      backward;
};

// Checks dx, dw and db against finite differences of <R, y>, then the accumulation rules:
// dw and db accumulate, dx accumulates only when asked, null gradients are skipped and leave
// the others unchanged.
inline void check_layer_gradients(const ParamLayer& L, uint64_t seed, bool with_bias = true) {
  std::vector<double> x = randn(L.x_n, seed), w = randn(L.w_n, seed + 1, 0.5), b = randn(L.b_n, seed + 2);
  const std::vector<double> R = randn(L.y_n, seed + 3);
  const double* bias = with_bias ? b.data() : nullptr;
  std::vector<double> y(L.y_n);
  auto loss = [&] {
    std::vector<double> yy(L.y_n);
    L.forward(x.data(), w.data(), with_bias ? b.data() : nullptr, yy.data());
    return dot(R, yy);
  };
  L.forward(x.data(), w.data(), bias, y.data());

  std::vector<double> dy = R, dx(L.x_n, 7.0), dw(L.w_n, 0.0), db(L.b_n, 0.0);
  L.backward(x.data(), w.data(), y.data(), dy.data(), dx.data(), false, dw.data(), db.data());

  const std::vector<double> ndx = numeric_grad(x, loss), ndw = numeric_grad(w, loss);
  EXPECT_LT(rel_err(dx, ndx), kGradTol) << "dx";
  EXPECT_LT(rel_err(dw, ndw), kGradTol) << "dw";
  if (with_bias) EXPECT_LT(rel_err(db, numeric_grad(b, loss)), kGradTol) << "db";

  // Accumulation: start from random gradients.
  const std::vector<double> dx0 = randn(L.x_n, seed + 4), dw0 = randn(L.w_n, seed + 5),
                            db0 = randn(L.b_n, seed + 6);
  std::vector<double> adx = dx0, adw = dw0, adb = db0;
  dy = R;
  L.backward(x.data(), w.data(), y.data(), dy.data(), adx.data(), true, adw.data(), adb.data());
  EXPECT_LT(rel_err(adx, add(dx0, dx)), 1e-12) << "dx must accumulate when asked";
  EXPECT_LT(rel_err(adw, add(dw0, dw)), 1e-12) << "dw must accumulate";
  EXPECT_LT(rel_err(adb, add(db0, db)), 1e-12) << "db must accumulate";

  // Overwrite: dx = new, whatever it held (even NaN: no 0 * dx).
  std::vector<double> odx(L.x_n, std::numeric_limits<double>::quiet_NaN());
  dy = R;
  L.backward(x.data(), w.data(), y.data(), dy.data(), odx.data(), false, nullptr, nullptr);
  EXPECT_LT(rel_err(odx, dx), 1e-12) << "dx alone (dw, db null)";

  std::vector<double> sdw = dw0;
  dy = R;
  L.backward(x.data(), w.data(), y.data(), dy.data(), nullptr, false, sdw.data(), nullptr);
  EXPECT_LT(rel_err(sdw, add(dw0, dw)), 1e-12) << "dw alone (dx, db null)";

  std::vector<double> sdb = db0;
  dy = R;
  L.backward(x.data(), w.data(), y.data(), dy.data(), nullptr, false, nullptr, sdb.data());
  EXPECT_LT(rel_err(sdb, add(db0, db)), 1e-12) << "db alone (dx, dw null)";
}

}  // namespace gancu::test
