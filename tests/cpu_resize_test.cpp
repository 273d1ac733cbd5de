// CPU bilinear resizing (ops.h, resize_bilinear_forward): forward against values PyTorch's
// F.interpolate(mode='bilinear', align_corners=False) printed, against a hand-computed upscale and
// against a direct double formula written here (not gancu/bilinear_taps.h) over up-, down- and
// mixed scalings; backward against finite differences in double and the accumulation rules; the
// same bits for any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

std::string name(const ResizeDims& d) {
  return detail::concat(d.n, "x", d.h, "x", d.w, "x", d.c, " -> ", d.out_h, "x", d.out_w);
}

// Up, down, mixed, identity, a single pixel in and out, large factors both ways.
const std::vector<ResizeDims> kShapes = {
    {2, 3, 4, 2, 7, 9}, {1, 8, 7, 3, 3, 4}, {2, 5, 3, 1, 2, 8},   {1, 4, 5, 2, 4, 5},
    {2, 1, 1, 3, 3, 2}, {1, 5, 6, 2, 1, 1}, {1, 2, 3, 1, 13, 17}, {1, 16, 13, 1, 3, 2},
};

// One axis, written from PyTorch's definition: source coordinate (j + 1/2) in / out - 1/2, clamped
// below at 0; neighbours floor and floor + 1 (the last pixel at the edge).
struct Taps1D {
  int i0, i1;
  double w1;
};
Taps1D taps(int j, int in, int out) {
  const double src = std::max(0.0, (j + 0.5) * double(in) / double(out) - 0.5);
  const int i0 = int(std::floor(src));
  return {i0, std::min(i0 + 1, in - 1), src - i0};
}

std::vector<double> resize_ref(const ResizeDims& d, const std::vector<double>& x) {
  std::vector<double> y(size_t(d.y_elems()));
  auto at = [&](int n, int h, int w, int c) { return x[((size_t(n) * d.h + h) * d.w + w) * d.c + c]; };
  for (int n = 0; n < d.n; ++n)
    for (int oy = 0; oy < d.out_h; ++oy)
      for (int ox = 0; ox < d.out_w; ++ox)
        for (int c = 0; c < d.c; ++c) {
          const Taps1D a = taps(oy, d.h, d.out_h), b = taps(ox, d.w, d.out_w);
          const double top = (1 - b.w1) * at(n, a.i0, b.i0, c) + b.w1 * at(n, a.i0, b.i1, c);
          const double bottom = (1 - b.w1) * at(n, a.i1, b.i0, c) + b.w1 * at(n, a.i1, b.i1, c);
          y[((size_t(n) * d.out_h + oy) * d.out_w + ox) * d.c + c] = (1 - a.w1) * top + a.w1 * bottom;
        }
  return y;
}

TEST(CpuResize, ForwardMatchesPyTorchsValues) {
  // x[0, h, w, c] = 0.1 (5h + w)^2 + 7c on 3x5x2, resized to 4x3 and to 2x7 by
  // F.interpolate(..., mode='bilinear', align_corners=False, antialias=False) in float64.
  CpuEnv env;
  std::vector<double> x(30);
  for (int h = 0; h < 3; ++h)
    for (int w = 0; w < 5; ++w)
      for (int c = 0; c < 2; ++c) x[size_t((h * 5 + w) * 2 + c)] = 0.1 * (h * 5 + w) * (h * 5 + w) + 7 * c;
  const std::vector<double> want_4x3 = {0.03333333333333334,
                                        7.033333333333333,
                                        0.4,
                                        7.4,
                                        1.366666666666667,
                                        8.366666666666667,
                                        1.8041666666666667,
                                        8.804166666666667,
                                        3.2125000000000004,
                                        10.2125,
                                        5.220833333333334,
                                        12.220833333333333,
                                        5.804166666666667,
                                        12.804166666666667,
                                        8.4625,
                                        15.462499999999999,
                                        11.720833333333335,
                                        18.720833333333335,
                                        10.700000000000001,
                                        17.7,
                                        14.4,
                                        21.4,
                                        18.7,
                                        25.700000000000003};
  const std::vector<double> want_2x7 = {0.625,
                                        7.625,
                                        0.825,
                                        7.825,
                                        1.1321428571428573,
                                        8.132142857142856,
                                        1.5250000000000001,
                                        8.525,
                                        2.060714285714286,
                                        9.060714285714287,
                                        2.6821428571428574,
                                        9.682142857142857,
                                        3.225,
                                        10.225,
                                        8.125,
                                        15.125,
                                        9.182142857142859,
                                        16.182142857142857,
                                        10.560714285714287,
                                        17.560714285714283,
                                        12.025,
                                        19.025,
                                        13.632142857142858,
                                        20.63214285714286,
                                        15.325000000000003,
                                        22.325000000000003,
                                        16.725,
                                        23.725};
  for (const auto& [dims, want] : {std::make_pair(ResizeDims{1, 3, 5, 2, 4, 3}, want_4x3),
                                   std::make_pair(ResizeDims{1, 3, 5, 2, 2, 7}, want_2x7)}) {
    std::vector<double> y(want.size(), NAN);
    ops::resize_bilinear_forward<double>(env.ex, dims, x.data(), y.data());
    EXPECT_LT(rel_err(y, want), 1e-14) << name(dims);
    std::vector<float> yf(want.size(), NAN);
    const auto xf = cast<float>(x);
    ops::resize_bilinear_forward<float>(env.ex, dims, xf.data(), yf.data());
    EXPECT_LT(rel_err(yf, want), 1e-6) << name(dims) << ", float";
  }
}

TEST(CpuResize, UpscaleByTwoByHand) {
  // [1 2; 3 4] to 4x4: per axis the source coordinates are 0 (clamped from -1/4), 1/4, 3/4 and
  // 5/4 (the last pixel), so a row [a b] becomes [a, (3a + b)/4, (a + 3b)/4, b].
  CpuEnv env;
  const std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> y(16);
  ops::resize_bilinear_forward<double>(env.ex, ResizeDims{1, 2, 2, 1, 4, 4}, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25,
                                    3.75, 4}));
}

TEST(CpuResize, ForwardMatchesTheDirectFormula) {
  CpuEnv env;
  uint64_t seed = 1;
  for (const ResizeDims& d : kShapes) {
    const auto x = randn(size_t(d.x_elems()), seed++);
    const auto ref = resize_ref(d, x);
    std::vector<double> y(ref.size(), NAN);
    ops::resize_bilinear_forward<double>(env.ex, d, x.data(), y.data());
    EXPECT_LT(rel_err(y, ref), 1e-14) << name(d);
    const auto xf = cast<float>(x);
    std::vector<float> yf(ref.size(), NAN);
    ops::resize_bilinear_forward<float>(env.ex, d, xf.data(), yf.data());
    EXPECT_LT(rel_err(yf, ref), 1e-6) << name(d) << ", float";
  }
  // Same size: the identity.
  const ResizeDims same{1, 4, 5, 2, 4, 5};
  const auto x = randn(size_t(same.x_elems()), 9);
  std::vector<double> y(x.size());
  ops::resize_bilinear_forward<double>(env.ex, same, x.data(), y.data());
  EXPECT_EQ(y, x);
}

TEST(CpuResize, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  uint64_t seed = 100;
  for (const ResizeDims& d : kShapes) {
    SCOPED_TRACE(name(d));
    std::vector<double> x = randn(size_t(d.x_elems()), seed++);
    const auto R = randn(size_t(d.y_elems()), seed++);
    auto loss = [&] {
      std::vector<double> y(R.size());
      ops::resize_bilinear_forward<double>(env.ex, d, x.data(), y.data());
      return dot(R, y);
    };
    std::vector<double> dx(x.size(), NAN);  // overwritten
    ops::resize_bilinear_backward<double>(env.ex, d, R.data(), dx.data(), false);
    EXPECT_LT(rel_err(dx, numeric_grad(x, loss)), kGradTol);
    // Linear: the adjoint identity <R, F(v)> = <F^T(R), v> holds to rounding.
    const auto v = randn(x.size(), seed++);
    std::vector<double> fv(R.size());
    ops::resize_bilinear_forward<double>(env.ex, d, v.data(), fv.data());
    EXPECT_NEAR(dot(R, fv), dot(dx, v), 1e-12 * (1 + std::abs(dot(dx, v))));

    const auto dx0 = randn(x.size(), seed++);
    std::vector<double> acc = dx0;
    ops::resize_bilinear_backward<double>(env.ex, d, R.data(), acc.data(), true);
    EXPECT_LT(rel_err(acc, add(dx0, dx)), 1e-15) << "dx must accumulate when asked";
    ops::resize_bilinear_backward<double>(env.ex, d, R.data(), nullptr, false);  // nothing wanted
  }
}

TEST(CpuResize, ResultsDoNotDependOnTheThreadCount) {
  const ResizeDims d{8, 12, 10, 16, 37, 29};  // big enough to run in parallel
  const auto x = cast<float>(randn(size_t(d.x_elems()), 3)), dy = cast<float>(randn(size_t(d.y_elems()), 4));
  std::vector<std::vector<float>> results;
  const int keep = omp_get_max_threads();
  for (int threads : {1, 3}) {
    const Exec ex = Exec::cpu(threads);
    std::vector<float> y(size_t(d.y_elems())), dx(size_t(d.x_elems()));
    ops::resize_bilinear_forward<float>(ex, d, x.data(), y.data());
    ops::resize_bilinear_backward<float>(ex, d, dy.data(), dx.data(), false);
    results.push_back(y);
    results.push_back(dx);
  }
  set_cpu_threads(keep);
  EXPECT_EQ(results[0], results[2]);
  EXPECT_EQ(results[1], results[3]);
}

}  // namespace
}  // namespace gancu::test
