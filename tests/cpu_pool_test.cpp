// CPU max and average pooling: forward against direct loops over several shapes (k 1/2/3, stride
// 1/2/3, padding 0/1, odd sizes, overlapping windows), backward against finite differences in
// double, max pooling's first-position rule on ties against a serial scatter reference, NaN
// propagation, and the dx accumulation rules; max pooling's tangent (jvp) against directional
// finite differences and as the adjoint of its backward. Average pooling with and without the
// padding in the divisor (include_pad), the latter also against hand-computed values.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

const std::vector<PoolDims> kShapes = {
    PoolDims::make(2, 5, 7, 3, 2, 2, 0),  // odd sizes, the last row/column dropped
    PoolDims::make(1, 6, 6, 4, 3, 1, 1),  // overlapping, padded
    PoolDims::make(3, 7, 5, 2, 3, 2, 1),  // overlapping, padded, odd
    PoolDims::make(2, 4, 5, 5, 2, 1, 0),  // overlapping k2 s1
    PoolDims::make(1, 9, 8, 3, 3, 3, 0),  // k = s = 3
    PoolDims::make(2, 5, 5, 1, 2, 2, 1),  // padding on both sides, one channel
    PoolDims::make(2, 3, 4, 2, 1, 1, 0),  // k = 1: identity
};

// The shapes again with include_pad = false (average pooling divides by the taps in the image).
std::vector<PoolDims> avg_shapes() {
  std::vector<PoolDims> out = kShapes;
  for (PoolDims d : kShapes) {
    d.include_pad = false;
    out.push_back(d);
  }
  return out;
}

std::string name(const PoolDims& d) {
  return detail::concat(d.n, "x", d.h, "x", d.w, "x", d.c, " k", d.k, " s", d.stride, " p", d.pad, " -> ",
                        d.p, "x", d.q, d.include_pad ? "" : " (padding not counted)");
}

size_t xi(const PoolDims& d, int n, int h, int w, int c) {
  return ((size_t(n) * d.h + h) * d.w + w) * d.c + c;
}
size_t yi(const PoolDims& d, int n, int p, int q, int c) {
  return ((size_t(n) * d.p + p) * d.q + q) * d.c + c;
}

// Direct loops: the window's valid taps in row-major order.
template <class F>
void for_window(const PoolDims& d, int p, int q, F&& f) {
  for (int r = 0; r < d.k; ++r)
    for (int s = 0; s < d.k; ++s) {
      const int h = p * d.stride - d.pad + r, w = q * d.stride - d.pad + s;
      if (h >= 0 && h < d.h && w >= 0 && w < d.w) f(h, w);
    }
}

std::vector<double> max_ref(const PoolDims& d, const std::vector<double>& x) {
  std::vector<double> y(size_t(d.n) * d.p * d.q * d.c);
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q)
        for (int c = 0; c < d.c; ++c) {
          double m = -std::numeric_limits<double>::infinity();
          for_window(d, p, q, [&](int h, int w) { m = std::max(m, x[xi(d, n, h, w, c)]); });
          y[yi(d, n, p, q, c)] = m;
        }
  return y;
}

std::vector<double> avg_ref(const PoolDims& d, const std::vector<double>& x) {
  std::vector<double> y(size_t(d.n) * d.p * d.q * d.c);
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q)
        for (int c = 0; c < d.c; ++c) {
          double s = 0;
          int taps = 0;
          for_window(d, p, q, [&](int h, int w) {
            s += x[xi(d, n, h, w, c)];
            ++taps;
          });
          y[yi(d, n, p, q, c)] = s / (d.include_pad ? d.k * d.k : taps);
        }
  return y;
}

// Max pooling's backward as a serial scatter: each window's dy to its first maximum.
std::vector<double> max_backward_ref(const PoolDims& d, const std::vector<double>& x,
                                     const std::vector<double>& dy) {
  std::vector<double> dx(x.size(), 0.0);
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q)
        for (int c = 0; c < d.c; ++c) {
          size_t best = 0;
          bool any = false;
          for_window(d, p, q, [&](int h, int w) {
            const size_t i = xi(d, n, h, w, c);
            if (!any || x[i] > x[best]) best = i;
            any = true;
          });
          dx[best] += dy[yi(d, n, p, q, c)];
        }
  return dx;
}

// Distinct values 0.01 apart, shuffled: every window's maximum is unique by far more than the
// finite-difference step, so the argmax cannot flip during the check.
std::vector<double> distinct_values(size_t n, uint64_t seed) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (double(i) - double(n) / 2) * 0.01;
  std::mt19937_64 gen(seed);
  std::shuffle(v.begin(), v.end(), gen);
  return v;
}

TEST(CpuPool, ForwardMatchesDirectLoops) {
  CpuEnv env;
  uint64_t seed = 1;
  for (const PoolDims& d : avg_shapes()) {
    const auto x = randn(size_t(d.n) * d.h * d.w * d.c, seed++);
    const auto xf = cast<float>(x);
    const size_t ny = size_t(d.n) * d.p * d.q * d.c;
    std::vector<float> ym(ny, NAN), ya(ny, NAN);
    ops::maxpool2d_forward<float>(env.ex, d, xf.data(), ym.data());
    ops::avgpool2d_forward<float>(env.ex, d, xf.data(), ya.data());
    EXPECT_EQ(ym, cast<float>(max_ref(d, cast<double>(xf)))) << "max " << name(d);  // exact: a copy
    EXPECT_LT(rel_err(ya, avg_ref(d, cast<double>(xf))), 1e-6) << "avg " << name(d);

    std::vector<double> yd(ny, NAN);
    ops::avgpool2d_forward<double>(env.ex, d, x.data(), yd.data());
    EXPECT_LT(rel_err(yd, avg_ref(d, x)), 1e-14) << "avg double " << name(d);
    ops::maxpool2d_forward<double>(env.ex, d, x.data(), yd.data());
    EXPECT_EQ(yd, max_ref(d, x)) << "max double " << name(d);
  }
}

TEST(CpuPool, OutputSizesFollowPyTorch) {
  // floor((h + 2p - k) / s) + 1
  const PoolDims a = PoolDims::make(1, 7, 8, 1, 3, 2, 1);
  EXPECT_EQ(a.p, 4);
  EXPECT_EQ(a.q, 4);
  const PoolDims b = PoolDims::make(1, 5, 5, 1, 2, 2, 0);
  EXPECT_EQ(b.p, 2);
  EXPECT_THROW(PoolDims::make(1, 5, 5, 1, 3, 1, 2), UsageError);  // padding above k / 2
  EXPECT_THROW(PoolDims::make(1, 2, 5, 1, 3, 1, 0), UsageError);  // window larger than the input
  EXPECT_THROW(PoolDims::make(1, 5, 5, 1, 2, 0, 0), UsageError);
}

// Backward of <R, pool(x)> against central differences, then dx's accumulate/overwrite rules.
void check_backward(const PoolDims& d, bool max, uint64_t seed) {
  CpuEnv env;
  const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
  std::vector<double> x = max ? distinct_values(nx, seed) : randn(nx, seed);
  const std::vector<double> R = randn(ny, seed + 1);
  std::vector<double> y(ny);
  auto forward = [&](const std::vector<double>& in, std::vector<double>& out) {
    if (max)
      ops::maxpool2d_forward<double>(env.ex, d, in.data(), out.data());
    else
      ops::avgpool2d_forward<double>(env.ex, d, in.data(), out.data());
  };
  auto backward = [&](double* dx, bool acc) {
    if (max)
      ops::maxpool2d_backward<double>(env.ex, d, x.data(), y.data(), R.data(), dx, acc);
    else
      ops::avgpool2d_backward<double>(env.ex, d, R.data(), dx, acc);
  };
  auto loss = [&] {
    std::vector<double> yy(ny);
    forward(x, yy);
    return dot(R, yy);
  };
  forward(x, y);
  std::vector<double> dx(nx, std::numeric_limits<double>::quiet_NaN());  // overwritten, NaN or not
  backward(dx.data(), false);
  const std::string what = std::string(max ? "maxpool " : "avgpool ") + name(d);
  EXPECT_LT(rel_err(dx, numeric_grad(x, loss)), kGradTol) << what;
  if (max) EXPECT_LT(rel_err(dx, max_backward_ref(d, x, R)), 1e-15) << what;

  const std::vector<double> dx0 = randn(nx, seed + 2);
  std::vector<double> adx = dx0;
  backward(adx.data(), true);
  EXPECT_LT(rel_err(adx, add(dx0, dx)), 1e-15) << what << ": dx must accumulate when asked";
  backward(nullptr, false);  // no gradient wanted: nothing to do, no crash
}

TEST(CpuPool, MaxBackwardMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const PoolDims& d : kShapes) check_backward(d, true, seed += 10);
}

TEST(CpuPool, AvgBackwardMatchesFiniteDifferences) {
  uint64_t seed = 200;
  for (const PoolDims& d : avg_shapes()) check_backward(d, false, seed += 10);
}

TEST(CpuPool, MaxBackwardRoutesTiesToTheFirstPosition) {
  // Small integers: many windows hold their maximum twice or more, in overlapping windows too.
  CpuEnv env;
  std::mt19937 gen(5);
  for (const PoolDims& d : kShapes) {
    const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
    std::vector<float> x(nx), y(ny), dx(nx, NAN);
    for (float& v : x) v = float(int(gen() % 3));
    const auto dy = cast<float>(randn(ny, 7));
    ops::maxpool2d_forward<float>(env.ex, d, x.data(), y.data());
    ops::maxpool2d_backward<float>(env.ex, d, x.data(), y.data(), dy.data(), dx.data(), false);
    EXPECT_LT(rel_err(dx, max_backward_ref(d, cast<double>(x), cast<double>(dy))), 1e-6) << name(d);
  }
  // A constant image, 3x3 windows with stride 1: each window sends its dy to its top-left tap.
  const PoolDims d = PoolDims::make(1, 4, 4, 1, 3, 1, 0);
  const std::vector<float> x(16, 1.0f), dy = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> y(4), dx(16);
  ops::maxpool2d_forward<float>(env.ex, d, x.data(), y.data());
  ops::maxpool2d_backward<float>(env.ex, d, x.data(), y.data(), dy.data(), dx.data(), false);
  const std::vector<float> want = {1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(dx, want);
}

// The tangent of max pooling: away from ties the pool is linear near x, so the jvp along tx equals
// the central difference (y(x + e tx) - y(x - e tx)) / 2e; and it is the adjoint of the backward:
// <dty, jvp(tx)> = <backward(dty), tx>.
TEST(CpuPool, MaxJvpIsTheDirectionalDerivativeAndTheBackwardsAdjoint) {
  CpuEnv env;
  uint64_t seed = 300;
  for (const PoolDims& d : kShapes) {
    SCOPED_TRACE(name(d));
    const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
    const auto x = distinct_values(nx, seed++);
    const auto tx = randn(nx, seed++), dty = randn(ny, seed++);
    std::vector<double> y(ny), ty(ny, NAN), up(ny), down(ny), dx(nx);
    ops::maxpool2d_forward<double>(env.ex, d, x.data(), y.data());
    ops::maxpool2d_jvp<double>(env.ex, d, x.data(), y.data(), tx.data(), ty.data());
    std::vector<double> xp(nx), xm(nx);
    for (size_t i = 0; i < nx; ++i) {
      xp[i] = x[i] + kFdEps * tx[i];
      xm[i] = x[i] - kFdEps * tx[i];
    }
    ops::maxpool2d_forward<double>(env.ex, d, xp.data(), up.data());
    ops::maxpool2d_forward<double>(env.ex, d, xm.data(), down.data());
    std::vector<double> fd(ny);
    for (size_t i = 0; i < ny; ++i) fd[i] = (up[i] - down[i]) / (2 * kFdEps);
    EXPECT_LT(rel_err(ty, fd), kGradTol);
    ops::maxpool2d_backward<double>(env.ex, d, x.data(), y.data(), dty.data(), dx.data(), false);
    EXPECT_NEAR(dot(dty, ty), dot(dx, tx), 1e-12 * (1 + std::abs(dot(dx, tx))));
  }
}

// On ties the tangent comes from the first maximum, the position backward routes dy to: the
// adjoint identity then holds with ties and NaN too.
TEST(CpuPool, MaxJvpTakesTheFirstMaximumOnTiesAndNaN) {
  CpuEnv env;
  std::mt19937 gen(6);
  for (const PoolDims& d : kShapes) {
    const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
    std::vector<double> x(nx);
    for (double& v : x) v = double(int(gen() % 3));
    x[nx / 2] = NAN;
    const auto tx = randn(nx, 8), dty = randn(ny, 9);
    std::vector<double> y(ny), ty(ny), dx(nx);
    ops::maxpool2d_forward<double>(env.ex, d, x.data(), y.data());
    ops::maxpool2d_jvp<double>(env.ex, d, x.data(), y.data(), tx.data(), ty.data());
    ops::maxpool2d_backward<double>(env.ex, d, x.data(), y.data(), dty.data(), dx.data(), false);
    EXPECT_NEAR(dot(dty, ty), dot(dx, tx), 1e-12 * (1 + std::abs(dot(dx, tx)))) << name(d);
    for (double v : ty) ASSERT_TRUE(std::isfinite(v)) << name(d);
  }
  // A constant image, 3x3 windows with stride 1: each window takes its top-left tap's tangent.
  const PoolDims d = PoolDims::make(1, 4, 4, 1, 3, 1, 0);
  std::vector<float> x(16, 1.0f), tx(16), y(4), ty(4);
  std::iota(tx.begin(), tx.end(), 0.0f);
  ops::maxpool2d_forward<float>(env.ex, d, x.data(), y.data());
  ops::maxpool2d_jvp<float>(env.ex, d, x.data(), y.data(), tx.data(), ty.data());
  EXPECT_EQ(ty, (std::vector<float>{0, 1, 4, 5}));
}

TEST(CpuPool, MaxPropagatesNaN) {
  CpuEnv env;
  const PoolDims d = PoolDims::make(1, 2, 4, 1, 2, 2, 0);
  const std::vector<float> x = {1,   5, 2, 3,  //
                                NAN, 0, 4, 1};
  std::vector<float> y(2), dx(8);
  ops::maxpool2d_forward<float>(env.ex, d, x.data(), y.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 4.0f);
  const std::vector<float> dy = {1.0f, 2.0f};
  ops::maxpool2d_backward<float>(env.ex, d, x.data(), y.data(), dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (std::vector<float>{0, 0, 0, 0, 1, 0, 2, 0}));
}

TEST(CpuPool, AvgCountsPaddingAsZeros) {
  // 2x2 input of ones, k = 2, s = 1, p = 1: corners see one pixel (1/4), edges two (1/2), centre 1.
  CpuEnv env;
  const PoolDims d = PoolDims::make(1, 2, 2, 1, 2, 1, 1);
  ASSERT_EQ(d.p, 3);
  const std::vector<float> x(4, 1.0f);
  std::vector<float> y(9);
  ops::avgpool2d_forward<float>(env.ex, d, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0.25f, 0.5f, 0.25f, 0.5f, 1.0f, 0.5f, 0.25f, 0.5f, 0.25f}));
}

TEST(CpuPool, AvgCanLeaveThePaddingOutOfTheCount) {
  // PyTorch's count_include_pad=False: x = [1 2; 3 4], k = 2, s = 1, p = 1. Each output is the
  // mean of the pixels its window covers: corners one pixel, edges two, the centre all four.
  CpuEnv env;
  const PoolDims d = PoolDims::make(1, 2, 2, 1, 2, 1, 1, /*include_pad=*/false);
  ASSERT_EQ(d.p, 3);
  const std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> y(9);
  ops::avgpool2d_forward<double>(env.ex, d, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}));
  // Backward of dy = 1: every pixel is in one corner window (1/1), two edge windows (1/2 each)
  // and the centre window (1/4): 2.25.
  const std::vector<double> dy(9, 1.0);
  std::vector<double> dx(4);
  ops::avgpool2d_backward<double>(env.ex, d, dy.data(), dx.data(), false);
  EXPECT_EQ(dx, (std::vector<double>(4, 2.25)));
  // The default counts the padding: the corners are 1/4 (AvgCountsPaddingAsZeros).
  EXPECT_TRUE(PoolDims::make(1, 2, 2, 1, 2, 1, 1).include_pad);
}

TEST(CpuPool, ResultsDoNotDependOnTheThreadCount) {
  const PoolDims d = PoolDims::make(16, 28, 28, 64, 3, 2, 1);  // big enough to run in parallel
  const size_t nx = size_t(d.n) * d.h * d.w * d.c, ny = size_t(d.n) * d.p * d.q * d.c;
  const auto x = cast<float>(randn(nx, 9)), dy = cast<float>(randn(ny, 10));
  std::vector<std::vector<float>> results;
  const int keep = omp_get_max_threads();
  for (int threads : {1, 3}) {
    const Exec ex = Exec::cpu(threads);
    std::vector<float> y(ny), dx(nx), ya(ny), dxa(nx);
    ops::maxpool2d_forward<float>(ex, d, x.data(), y.data());
    ops::maxpool2d_backward<float>(ex, d, x.data(), y.data(), dy.data(), dx.data(), false);
    ops::avgpool2d_forward<float>(ex, d, x.data(), ya.data());
    ops::avgpool2d_backward<float>(ex, d, dy.data(), dxa.data(), false);
    for (auto* v : {&y, &dx, &ya, &dxa}) results.push_back(*v);
  }
  set_cpu_threads(keep);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(results[i], results[i + 4]) << "output " << i;
}

}  // namespace
}  // namespace gancu::test
