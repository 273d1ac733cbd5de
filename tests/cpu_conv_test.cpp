// CPU convolution and transposed convolution: forward against direct loops, backward against
// finite differences, chunked execution against unchunked.
#include <gtest/gtest.h>

#include "cpu/conv_direct.h"
#include "cpu/im2col.h"
#include "cpu_test_util.h"
#include "gancu/ops.h"

namespace gancu::test {
namespace {

// y[n,p,q,k] = act(b[k] + sum x[n, p st - pad_h + r, q st - pad_w + s, c] w[k,r,s,c])
std::vector<double> conv_ref(const ConvDims& d, const std::vector<double>& x, const std::vector<double>& w,
                             const double* b, Activation act) {
  std::vector<double> y(size_t(d.y_elems()));
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q)
        for (int k = 0; k < d.k; ++k) {
          double s = b ? b[k] : 0.0;
          for (int r = 0; r < d.r; ++r)
            for (int t = 0; t < d.s; ++t) {
              const int h = p * d.stride - d.pad_h + r, ww = q * d.stride - d.pad_w + t;
              if (h < 0 || h >= d.h || ww < 0 || ww >= d.w) continue;
              for (int c = 0; c < d.c; ++c)
                s += x[((size_t(n) * d.h + h) * d.w + ww) * d.c + c] *
                     w[((size_t(k) * d.r + r) * d.s + t) * d.c + c];
            }
          y[((size_t(n) * d.p + p) * d.q + q) * d.k + k] = act_ref(s, act);
        }
  return y;
}

// The transposed convolution as PyTorch defines it: every input pixel scatters its filter taps.
std::vector<double> convT_ref(const ConvDims& d, const std::vector<double>& x, const std::vector<double>& w,
                              const double* b, Activation act) {
  std::vector<double> y(size_t(d.x_elems()), 0.0);
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p)
      for (int q = 0; q < d.q; ++q)
        for (int k = 0; k < d.k; ++k)
          for (int r = 0; r < d.r; ++r)
            for (int t = 0; t < d.s; ++t) {
              const int h = p * d.stride - d.pad_h + r, ww = q * d.stride - d.pad_w + t;
              if (h < 0 || h >= d.h || ww < 0 || ww >= d.w) continue;
              for (int c = 0; c < d.c; ++c)
                y[((size_t(n) * d.h + h) * d.w + ww) * d.c + c] +=
                    x[((size_t(n) * d.p + p) * d.q + q) * d.k + k] *
                    w[((size_t(k) * d.r + r) * d.s + t) * d.c + c];
            }
  for (size_t i = 0; i < y.size(); ++i) y[i] = act_ref(y[i] + (b ? b[i % d.c] : 0.0), act);
  return y;
}

// n, h, w, c, k, r, s, stride, pad: odd sizes, non-square images and kernels, stride 1/2/3,
// pad 0/1/2, kernels 1/3/4, the pointwise fast path and a 1x1 kernel with stride; k > 4 runs
// the column method (im2col + GEMM), k <= 4 the direct loops (conv_direct.h); c = 1 and 3 have
// their own col2im loops; wide rows with k <= 4 take the direct path's four-pixel loops, and
// c % 16 == 0 its gathering adjoint. The last ones have kernels and padding that differ between
// the axes (Inception's 1x7, 7x1, 1x3 and 3x1 convolutions), by both methods.
std::vector<ConvDims> conv_shapes() {
  return {ConvDims::conv(2, 5, 7, 3, 6, 3, 3, 1, 1), ConvDims::conv(2, 6, 6, 2, 5, 4, 4, 2, 1),
          ConvDims::conv(1, 7, 5, 3, 2, 1, 1, 1, 0), ConvDims::conv(2, 9, 8, 2, 3, 3, 3, 2, 2),
          ConvDims::conv(1, 6, 5, 2, 6, 1, 1, 2, 0), ConvDims::conv(3, 5, 6, 1, 2, 4, 3, 1, 0),
          ConvDims::conv(1, 8, 7, 2, 5, 3, 3, 3, 1), ConvDims::conv(2, 3, 4, 5, 3, 4, 4, 2, 2),
          ConvDims::conv(2, 6, 5, 3, 1, 3, 3, 1, 1), ConvDims::conv(2, 5, 6, 2, 7, 3, 2, 2, 1),
          ConvDims::conv(2, 7, 6, 1, 5, 4, 4, 2, 1), ConvDims::conv(2, 5, 12, 3, 2, 3, 3, 1, 1),
          ConvDims::conv(1, 6, 13, 2, 1, 3, 3, 2, 0), ConvDims::conv(2, 6, 9, 16, 1, 3, 3, 1, 1),
          ConvDims::conv(1, 7, 6, 32, 2, 4, 4, 2, 1), ConvDims::conv(1, 4, 5, 64, 1, 3, 3, 1, 1),
          // as a generator builds them: h, w derived from the transposed conv's input
          ConvDims::transposed(2, 3, 4, 6, 2, 4, 4, 2, 1), ConvDims::transposed(2, 3, 3, 2, 1, 4, 4, 2, 1),
          ConvDims::conv(2, 5, 9, 3, 6, 1, 7, 1, 0, 3), ConvDims::conv(1, 9, 5, 2, 3, 7, 1, 1, 3, 0),
          ConvDims::conv(2, 6, 11, 2, 2, 1, 3, 1, 0, 1), ConvDims::conv(1, 7, 6, 3, 5, 3, 1, 2, 1, 0),
          ConvDims::transposed(2, 3, 4, 5, 2, 1, 3, 1, 0, 1)};
}

// Both methods must be exercised by the shapes above.
TEST(CpuConv, ShapesCoverEveryMethod) {
  int direct = 0, columns = 0, pointwise = 0;
  for (const ConvDims& d : conv_shapes()) {
    if (cpu::conv_is_pointwise(d))
      ++pointwise;
    else if (cpu::conv_use_direct(d))
      ++direct;
    else
      ++columns;
  }
  EXPECT_GE(direct, 3);
  EXPECT_GE(columns, 4);
  EXPECT_GE(pointwise, 1);
}

std::string describe(const ConvDims& d) {
  return testing::PrintToString(
      std::vector<int>{d.n, d.h, d.w, d.c, d.k, d.r, d.s, d.stride, d.pad_h, d.pad_w});
}

TEST(CpuConv, ForwardMatchesDirectLoops) {
  CpuEnv env;
  uint64_t seed = 1;
  for (const ConvDims& d : conv_shapes()) {
    env.reserve(std::max(ops::conv_workspace_bytes<double>(env.ex, d, false),
                         ops::conv_workspace_bytes<double>(env.ex, d, true)));
    for (const Activation& act : all_activations())
      for (bool bias : {false, true}) {
        SCOPED_TRACE(describe(d) + " " + act_name(act.kind) + (bias ? " bias" : ""));
        const auto x = randn(size_t(d.x_elems()), seed++), w = randn(size_t(d.filter_elems()), seed++, 0.3);
        const auto bk = randn(size_t(d.k), seed++), bc = randn(size_t(d.c), seed++);
        const auto ref = conv_ref(d, x, w, bias ? bk.data() : nullptr, act);
        std::vector<double> y(ref.size());
        ops::conv2d_forward<double>(env.ex, d, x.data(), w.data(), bias ? bk.data() : nullptr, y.data(), act);
        EXPECT_LT(rel_err(y, ref), 1e-13) << "conv";

        const auto xt = randn(size_t(d.y_elems()), seed++);
        const auto reft = convT_ref(d, xt, w, bias ? bc.data() : nullptr, act);
        std::vector<double> yt(reft.size());
        ops::conv_transpose2d_forward<double>(env.ex, d, xt.data(), w.data(), bias ? bc.data() : nullptr,
                                              yt.data(), act);
        EXPECT_LT(rel_err(yt, reft), 1e-13) << "conv transpose";

        const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(bk), xtf = cast<float>(xt),
                   bcf = cast<float>(bc);
        std::vector<float> yf(ref.size()), ytf(reft.size());
        env.reserve(ops::conv_workspace_bytes<float>(env.ex, d, false));
        ops::conv2d_forward<float>(env.ex, d, xf.data(), wf.data(), bias ? bf.data() : nullptr, yf.data(),
                                   act);
        ops::conv_transpose2d_forward<float>(env.ex, d, xtf.data(), wf.data(), bias ? bcf.data() : nullptr,
                                             ytf.data(), act);
        EXPECT_LT(rel_err(yf, ref), 1e-5) << "conv, float";
        EXPECT_LT(rel_err(ytf, reft), 1e-5) << "conv transpose, float";
      }
  }
}

ParamLayer conv_layer(CpuEnv& env, const ConvDims& d, Activation act) {
  env.reserve(ops::conv_workspace_bytes<double>(env.ex, d, false));
  return ParamLayer{size_t(d.x_elems()),
                    size_t(d.filter_elems()),
                    size_t(d.k),
                    size_t(d.y_elems()),
                    [&env, d, act](const double* x, const double* w, const double* b, double* y) {
                      ops::conv2d_forward<double>(env.ex, d, x, w, b, y, act);
                    },
                    [&env, d, act](const double* x, const double* w, const double* y, double* dy, double* dx,
                                   bool acc, double* dw, double* db) {
                      ops::conv2d_backward<double>(env.ex, d, x, w, y, dy, dx, acc, dw, db, act);
                    }};
}

ParamLayer convT_layer(CpuEnv& env, const ConvDims& d, Activation act) {
  env.reserve(ops::conv_workspace_bytes<double>(env.ex, d, true));
  return ParamLayer{size_t(d.y_elems()),
                    size_t(d.filter_elems()),
                    size_t(d.c),
                    size_t(d.x_elems()),
                    [&env, d, act](const double* x, const double* w, const double* b, double* y) {
                      ops::conv_transpose2d_forward<double>(env.ex, d, x, w, b, y, act);
                    },
                    [&env, d, act](const double* x, const double* w, const double* y, double* dy, double* dx,
                                   bool acc, double* dw, double* db) {
                      ops::conv_transpose2d_backward<double>(env.ex, d, x, w, y, dy, dx, acc, dw, db, act);
                    }};
}

TEST(CpuConv, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  const auto acts = all_activations();
  const auto shapes = conv_shapes();
  for (size_t i = 0; i < shapes.size(); ++i) {
    // Every shape with one activation (rotating), and every activation on the first shape.
    for (size_t a = 0; a < acts.size(); ++a) {
      if (i != 0 && a != i % acts.size()) continue;
      SCOPED_TRACE(describe(shapes[i]) + " " + act_name(acts[a].kind));
      check_layer_gradients(conv_layer(env, shapes[i], acts[a]), 1000 + 10 * i + a, /*with_bias=*/a % 2 == 0);
    }
  }
}

TEST(CpuConvTranspose, BackwardMatchesFiniteDifferences) {
  CpuEnv env;
  const auto acts = all_activations();
  // Transposed dims as a generator builds them (h, w derived), plus the conv shapes, whose
  // leftover rows (PyTorch's output_padding) the adjoint must leave without input.
  std::vector<ConvDims> shapes = {
      ConvDims::transposed(2, 3, 4, 6, 2, 4, 4, 2, 1), ConvDims::transposed(1, 4, 3, 5, 3, 3, 3, 1, 1),
      ConvDims::transposed(2, 2, 3, 4, 3, 5, 3, 3, 2), ConvDims::transposed(2, 3, 3, 2, 1, 4, 4, 2, 1),
      ConvDims::transposed(2, 3, 3, 6, 1, 4, 4, 2, 1)};
  for (const ConvDims& d : conv_shapes()) shapes.push_back(d);
  for (size_t i = 0; i < shapes.size(); ++i)
    for (size_t a = 0; a < acts.size(); ++a) {
      if (i != 0 && a != i % acts.size()) continue;
      SCOPED_TRACE(describe(shapes[i]) + " " + act_name(acts[a].kind));
      check_layer_gradients(convT_layer(env, shapes[i], acts[a]), 2000 + 10 * i + a,
                            /*with_bias=*/a % 2 == 1);
    }
}

// Batches larger than one chunk of columns: the chunked loops (per-chunk GEMMs, dw accumulated
// across chunks) must give the unchunked result.
TEST(CpuConv, ChunkedBatchMatchesSingleChunk) {
  CpuEnv env;
  const ConvDims d = ConvDims::conv(5, 6, 5, 3, 6, 3, 3, 2, 1);  // k > 4: columns
  const Activation act{Act::LeakyReLU, 0.2f};
  const auto x = randn(size_t(d.x_elems()), 1), w = randn(size_t(d.filter_elems()), 2),
             b = randn(size_t(d.k), 3);
  const auto g = randn(size_t(d.y_elems()), 4), xt = randn(size_t(d.y_elems()), 5),
             gt = randn(size_t(d.x_elems()), 6);
  struct Result {
    std::vector<double> y, dx, dw, yt, dxt, dwt;
  };
  auto run = [&] {
    Result r{std::vector<double>(size_t(d.y_elems())),      std::vector<double>(size_t(d.x_elems())),
             std::vector<double>(size_t(d.filter_elems())), std::vector<double>(size_t(d.x_elems())),
             std::vector<double>(size_t(d.y_elems())),      std::vector<double>(size_t(d.filter_elems()))};
    env.reserve(ops::conv_workspace_bytes<double>(env.ex, d, false));
    ops::conv2d_forward<double>(env.ex, d, x.data(), w.data(), b.data(), r.y.data(), act);
    auto dy = g;
    ops::conv2d_backward<double>(env.ex, d, x.data(), w.data(), r.y.data(), dy.data(), r.dx.data(), false,
                                 r.dw.data(), nullptr, act);
    ops::conv_transpose2d_forward<double>(env.ex, d, xt.data(), w.data(), nullptr, r.yt.data(), act);
    auto dyt = gt;
    ops::conv_transpose2d_backward<double>(env.ex, d, xt.data(), w.data(), r.yt.data(), dyt.data(),
                                           r.dxt.data(), false, r.dwt.data(), nullptr, act);
    return r;
  };
  const Result whole = run();
  const size_t saved = cpu::conv_column_budget_bytes();
  const size_t per_image = size_t(d.p) * d.q * d.r * d.s * d.c * sizeof(double);
  cpu::conv_column_budget_bytes() = 2 * per_image;  // chunks of 2, 2, 1 images
  EXPECT_EQ(ops::conv_workspace_bytes<double>(env.ex, d, false), 2 * per_image);
  const Result chunked = run();
  cpu::conv_column_budget_bytes() = 1;  // one image per chunk
  EXPECT_EQ(ops::conv_workspace_bytes<double>(env.ex, d, true), per_image);
  const Result single = run();
  cpu::conv_column_budget_bytes() = saved;
  for (const Result* r : {&chunked, &single}) {
    EXPECT_LT(rel_err(r->y, whole.y), 1e-14);
    EXPECT_LT(rel_err(r->dx, whole.dx), 1e-14);
    EXPECT_LT(rel_err(r->dw, whole.dw), 1e-13);
    EXPECT_LT(rel_err(r->yt, whole.yt), 1e-14);
    EXPECT_LT(rel_err(r->dxt, whole.dxt), 1e-14);
    EXPECT_LT(rel_err(r->dwt, whole.dwt), 1e-13);
  }
}

TEST(CpuConv, WorkspaceStaysBoundedAtLargeBatch) {
  CpuEnv env;
  const ConvDims d = ConvDims::conv(4096, 28, 28, 64, 32, 3, 3, 1, 1);
  const size_t bytes = ops::conv_workspace_bytes<float>(env.ex, d, false);
  EXPECT_LE(bytes, size_t(64) << 20);
  EXPECT_GE(bytes, size_t(d.p) * d.q * 9 * 64 * sizeof(float));  // at least one image
  EXPECT_EQ(ops::conv_workspace_bytes<float>(env.ex, ConvDims::conv(4096, 8, 8, 16, 32, 1, 1, 1, 0), false),
            0u)
      << "pointwise convolutions need no columns";
  EXPECT_EQ(ops::conv_workspace_bytes<float>(env.ex, ConvDims::conv(4096, 28, 28, 64, 1, 3, 3, 1, 1), true),
            0u)
      << "direct convolutions (few filters) need no columns";
  // An op given less workspace than it planned fails loudly instead of writing past it.
  const ConvDims small = ConvDims::conv(2, 5, 5, 2, 8, 3, 3, 1, 1);
  std::vector<float> x(size_t(small.x_elems())), w(size_t(small.filter_elems())), y(size_t(small.y_elems()));
  env.ex.set_workspace(nullptr, 0);
  EXPECT_THROW(ops::conv2d_forward<float>(env.ex, small, x.data(), w.data(), nullptr, y.data(), Activation{}),
               RuntimeError);
}

}  // namespace
}  // namespace gancu::test
