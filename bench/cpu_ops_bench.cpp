// Benchmarks of the CPU backend's layer ops at the shapes of the mlp and dcgan presets (batch
// 64, NHWC, float).
//
// Each benchmark checks its result once before timing it (as nccl-tests does): a few sampled
// outputs and gradients are recomputed with direct loops in double, and the largest relative
// error is reported as the `err` counter; the run is marked as failed when it exceeds 1e-4.
//
// Counters: items_per_second counts images (rows of the batch); GFLOP/s counts 2 flops per
// multiply-add of the layer's products (forward: one product; backward: the data and the weight
// gradient, two; batch norm: none, its bandwidth is what matters, so it reports GB/s of the
// tensors read and written at least once; pairwise distances: the GEMM's 2 m n d). The loss,
// layer-norm and penalty benchmarks report GB/s of the passes as written (each says its bytes).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_check.h"
#include "cpu/im2col.h"
#include "gancu/memory.h"
#include "gancu/ops.h"

namespace gancu {
namespace {

constexpr double kMaxErr = 1e-4;

const Exec& cpu_exec() {
  static const Exec ex = Exec::cpu();
  return ex;
}

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

double act_apply(double x, Activation a) {
  switch (a.kind) {
    case Act::ReLU:
      return x > 0 ? x : 0;
    case Act::LeakyReLU:
      return x > 0 ? x : a.slope * x;
    case Act::Tanh:
      return std::tanh(x);
    case Act::Sigmoid:
      return 1 / (1 + std::exp(-x));
    default:
      return x;
  }
}

// Largest |got - want| / (|want| + scale) over sampled checks; scale keeps near-zero values from
// dominating (it is the RMS of the reference values).
struct ErrorTracker {
  double worst = 0;
  void add(double got, double want, double scale) {
    worst = std::max(worst, std::abs(got - want) / (std::abs(want) + scale));
  }
};

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / std::max<size_t>(v.size(), 1)) + 1e-30;
}

void finish(benchmark::State& state, double err, double flops_per_iter, int64_t items_per_iter) {
  state.counters["err"] = err;
  if (flops_per_iter > 0)
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetItemsProcessed(int64_t(state.iterations()) * items_per_iter);
  if (!bench::within(err, kMaxErr)) bench::check_failed(state, "err " + std::to_string(err));
}

// ---- Linear -----------------------------------------------------------------------------------

void BM_LinearForward(benchmark::State& state, LinearDims d, Activation act) {
  const Exec& ex = cpu_exec();
  const auto x = random_vector(size_t(d.batch) * d.in, 1), w = random_vector(size_t(d.out) * d.in, 2, 0.05f),
             b = random_vector(size_t(d.out), 3);
  std::vector<float> y(size_t(d.batch) * d.out);
  ops::linear_forward<float>(ex, d, x.data(), w.data(), b.data(), y.data(), act);
  ErrorTracker e;
  const double scale = rms(y);
  for (int t = 0; t < 64; ++t) {
    const int n = (t * 37) % d.batch, o = (t * 101) % d.out;
    double s = b[size_t(o)];
    for (int i = 0; i < d.in; ++i) s += double(x[size_t(n) * d.in + i]) * w[size_t(o) * d.in + i];
    e.add(y[size_t(n) * d.out + o], act_apply(s, act), scale);
  }
  for (auto _ : state) {
    ops::linear_forward<float>(ex, d, x.data(), w.data(), b.data(), y.data(), act);
    benchmark::DoNotOptimize(y.data());
  }
  finish(state, e.worst, 2.0 * d.batch * d.in * d.out, d.batch);
}

void BM_LinearBackward(benchmark::State& state, LinearDims d, Activation act) {
  const Exec& ex = cpu_exec();
  const auto x = random_vector(size_t(d.batch) * d.in, 1), w = random_vector(size_t(d.out) * d.in, 2, 0.05f),
             b = random_vector(size_t(d.out), 3), g = random_vector(size_t(d.batch) * d.out, 4);
  std::vector<float> y(size_t(d.batch) * d.out), dy = g, dx(size_t(d.batch) * d.in), dw(w.size(), 0.0f),
                                                 db(b.size(), 0.0f);
  ops::linear_forward<float>(ex, d, x.data(), w.data(), b.data(), y.data(), act);
  ops::linear_backward<float>(ex, d, x.data(), w.data(), y.data(), dy.data(), dx.data(), false, dw.data(),
                              db.data(), act);
  // dy now holds d(pre-activation): the reference uses it directly.
  ErrorTracker e;
  const double sx = rms(dx), sw = rms(dw);
  for (int t = 0; t < 32; ++t) {
    const int n = (t * 37) % d.batch, i = (t * 53) % d.in, o = (t * 101) % d.out;
    double gx = 0, gw = 0;
    for (int j = 0; j < d.out; ++j) gx += double(dy[size_t(n) * d.out + j]) * w[size_t(j) * d.in + i];
    for (int m = 0; m < d.batch; ++m) gw += double(dy[size_t(m) * d.out + o]) * x[size_t(m) * d.in + i];
    e.add(dx[size_t(n) * d.in + i], gx, sx);
    e.add(dw[size_t(o) * d.in + i], gw, sw);
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::memcpy(dy.data(), g.data(), g.size() * sizeof(float));  // backward overwrites dy
    state.ResumeTiming();
    ops::linear_backward<float>(ex, d, x.data(), w.data(), y.data(), dy.data(), dx.data(), false, dw.data(),
                                db.data(), act);
    benchmark::DoNotOptimize(dx.data());
  }
  finish(state, e.worst, 4.0 * d.batch * d.in * d.out, d.batch);
}

// ---- Convolution and transposed convolution ----------------------------------------------------

struct ConvData {
  ConvDims d;
  std::vector<float> img, pix, w, bias_k, bias_c, ws;  // img [n,h,w,c], pix [n,p,q,k]
  explicit ConvData(const ConvDims& dims)
      : d(dims),
        img(random_vector(size_t(dims.x_elems()), 1)),
        pix(random_vector(size_t(dims.y_elems()), 2)),
        w(random_vector(size_t(dims.filter_elems()), 3, 1.0f / std::sqrt(float(dims.r * dims.s * dims.c)))),
        bias_k(random_vector(size_t(dims.k), 4)),
        bias_c(random_vector(size_t(dims.c), 5)) {}
  size_t ii(int n, int h, int w_, int c) const { return ((size_t(n) * d.h + h) * d.w + w_) * d.c + c; }
  size_t pi(int n, int p, int q, int k) const { return ((size_t(n) * d.p + p) * d.q + q) * d.k + k; }
  size_t fi(int k, int r, int s, int c) const { return ((size_t(k) * d.r + r) * d.s + s) * d.c + c; }
  // sum over taps and c of image[n, p st - pad_h + r, q st - pad_w + s, c] * w[k, r, s, c]
  double conv_at(const std::vector<float>& image, int n, int p, int q, int k) const {
    double s = 0;
    for (int r = 0; r < d.r; ++r)
      for (int t = 0; t < d.s; ++t) {
        const int h = p * d.stride - d.pad_h + r, x = q * d.stride - d.pad_w + t;
        if (h < 0 || h >= d.h || x < 0 || x >= d.w) continue;
        for (int c = 0; c < d.c; ++c) s += double(image[ii(n, h, x, c)]) * w[fi(k, r, t, c)];
      }
    return s;
  }
  // the adjoint: sum over (p, q, r, s) landing on (h, x) and k of pixels[n, p, q, k] * w[k, r, s, c]
  double adjoint_at(const std::vector<float>& pixels, int n, int h, int x, int c) const {
    double s = 0;
    for (int r = 0; r < d.r; ++r)
      for (int t = 0; t < d.s; ++t) {
        const int ph = h + d.pad_h - r, qw = x + d.pad_w - t;
        if (ph < 0 || qw < 0 || ph % d.stride || qw % d.stride) continue;
        const int p = ph / d.stride, q = qw / d.stride;
        if (p >= d.p || q >= d.q) continue;
        for (int k = 0; k < d.k; ++k) s += double(pixels[pi(n, p, q, k)]) * w[fi(k, r, t, c)];
      }
    return s;
  }
  // sum over n, p, q of pixels[n, p, q, k] * image[n, p st - pad_h + r, q st - pad_w + s, c]
  double weight_at(const std::vector<float>& image, const std::vector<float>& pixels, int k, int r, int t,
                   int c) const {
    double s = 0;
    for (int n = 0; n < d.n; ++n)
      for (int p = 0; p < d.p; ++p)
        for (int q = 0; q < d.q; ++q) {
          const int h = p * d.stride - d.pad_h + r, x = q * d.stride - d.pad_w + t;
          if (h < 0 || h >= d.h || x < 0 || x >= d.w) continue;
          s += double(pixels[pi(n, p, q, k)]) * image[ii(n, h, x, c)];
        }
    return s;
  }
  void reserve_workspace(Exec& ex, bool transposed) {
    ws.resize(ops::conv_workspace_bytes<float>(ex, d, transposed) / sizeof(float) + 1);
    ex.set_workspace(ws.data(), ws.size() * sizeof(float));
  }
  double flops() const { return 2.0 * double(d.y_elems()) * d.r * d.s * d.c; }
};

void BM_ConvForward(benchmark::State& state, ConvDims d, Activation act, bool transposed) {
  Exec ex = cpu_exec();
  ConvData c(d);
  c.reserve_workspace(ex, transposed);
  std::vector<float> out(transposed ? c.img.size() : c.pix.size());
  auto run = [&] {
    if (transposed)
      ops::conv_transpose2d_forward<float>(ex, d, c.pix.data(), c.w.data(), c.bias_c.data(), out.data(), act);
    else
      ops::conv2d_forward<float>(ex, d, c.img.data(), c.w.data(), c.bias_k.data(), out.data(), act);
  };
  run();
  ErrorTracker e;
  const double scale = rms(out);
  for (int t = 0; t < 48; ++t) {
    const int n = (t * 17) % d.n;
    if (transposed) {
      const int h = (t * 5) % d.h, x = (t * 11) % d.w, ch = (t * 29) % d.c;
      e.add(out[c.ii(n, h, x, ch)], act_apply(c.adjoint_at(c.pix, n, h, x, ch) + c.bias_c[size_t(ch)], act),
            scale);
    } else {
      const int p = (t * 5) % d.p, q = (t * 11) % d.q, k = (t * 29) % d.k;
      e.add(out[c.pi(n, p, q, k)], act_apply(c.conv_at(c.img, n, p, q, k) + c.bias_k[size_t(k)], act), scale);
    }
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, e.worst, c.flops(), d.n);
}

void BM_ConvBackward(benchmark::State& state, ConvDims d, Activation act, bool transposed) {
  Exec ex = cpu_exec();
  ConvData c(d);
  c.reserve_workspace(ex, transposed);
  // The op's input x, output y and their gradients.
  const std::vector<float>& x = transposed ? c.pix : c.img;
  std::vector<float> y(transposed ? c.img.size() : c.pix.size());
  const std::vector<float> g = random_vector(y.size(), 6);
  std::vector<float> dy = g, dx(x.size()), dw(c.w.size(), 0.0f), db(size_t(transposed ? d.c : d.k), 0.0f);
  if (transposed)
    ops::conv_transpose2d_forward<float>(ex, d, x.data(), c.w.data(), c.bias_c.data(), y.data(), act);
  else
    ops::conv2d_forward<float>(ex, d, x.data(), c.w.data(), c.bias_k.data(), y.data(), act);
  auto run = [&] {
    if (transposed)
      ops::conv_transpose2d_backward<float>(ex, d, x.data(), c.w.data(), y.data(), dy.data(), dx.data(),
                                            false, dw.data(), db.data(), act);
    else
      ops::conv2d_backward<float>(ex, d, x.data(), c.w.data(), y.data(), dy.data(), dx.data(), false,
                                  dw.data(), db.data(), act);
  };
  run();  // dy now holds d(pre-activation), which the references use
  ErrorTracker e;
  const double sx = rms(dx), sw = rms(dw);
  for (int t = 0; t < 24; ++t) {
    const int n = (t * 17) % d.n;
    const int k = (t * 29) % d.k, r = (t * 3) % d.r, s = (t * 7) % d.s, ch = (t * 13) % d.c;
    if (transposed) {
      const int p = (t * 5) % d.p, q = (t * 11) % d.q;
      e.add(dx[c.pi(n, p, q, k)], c.conv_at(dy, n, p, q, k), sx);
      e.add(dw[c.fi(k, r, s, ch)], c.weight_at(dy, x, k, r, s, ch), sw);
    } else {
      const int h = (t * 5) % d.h, xx = (t * 11) % d.w;
      e.add(dx[c.ii(n, h, xx, ch)], c.adjoint_at(dy, n, h, xx, ch), sx);
      e.add(dw[c.fi(k, r, s, ch)], c.weight_at(x, dy, k, r, s, ch), sw);
    }
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::memcpy(dy.data(), g.data(), g.size() * sizeof(float));
    state.ResumeTiming();
    run();
    benchmark::DoNotOptimize(dx.data());
  }
  finish(state, e.worst, 2.0 * c.flops(), d.n);
}

// ---- Batch norm --------------------------------------------------------------------------------

void BM_BatchNorm(benchmark::State& state, BatchNormDims d, Activation act, bool backward, int images) {
  const Exec& ex = cpu_exec();
  const size_t n = size_t(d.count) * d.channels, C = size_t(d.channels);
  const auto x = random_vector(n, 1, 2.0f), gamma = random_vector(C, 2), beta = random_vector(C, 3),
             g = random_vector(n, 4);
  std::vector<float> y(n), rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), dy = g, dx(n), dg(C, 0.0f), dbeta(C, 0.0f);
  ops::batchnorm_forward<float>(ex, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), sm.data(), si.data(), y.data(), act);
  ops::batchnorm_backward<float>(ex, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                 dx.data(), false, dg.data(), dbeta.data(), act);
  // Check: the mean and invstd of a few channels, outputs, and dbeta (= sum of d(pre)).
  ErrorTracker e;
  for (size_t c = 0; c < C; c += 17) {
    double s = 0, ss = 0, sd = 0;
    for (int64_t i = 0; i < d.count; ++i) s += x[size_t(i) * C + c];
    const double mean = s / double(d.count);
    for (int64_t i = 0; i < d.count; ++i) {
      ss += (x[size_t(i) * C + c] - mean) * (x[size_t(i) * C + c] - mean);
      sd += dy[size_t(i) * C + c];
    }
    const double invstd = 1 / std::sqrt(ss / double(d.count) + double(d.eps));
    e.add(sm[c], mean, 1.0);
    e.add(si[c], invstd, 0.0);
    e.add(y[c], act_apply(gamma[c] * (x[c] - mean) * invstd + beta[c], act), 1.0);
    e.add(dbeta[c], sd, std::sqrt(double(d.count)));
  }
  for (auto _ : state) {
    if (backward) {
      state.PauseTiming();
      std::memcpy(dy.data(), g.data(), n * sizeof(float));
      state.ResumeTiming();
      ops::batchnorm_backward<float>(ex, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                     dx.data(), false, dg.data(), dbeta.data(), act);
    } else {
      ops::batchnorm_forward<float>(ex, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(),
                                    rm.data(), rv.data(), sm.data(), si.data(), y.data(), act);
    }
    benchmark::ClobberMemory();
  }
  // Bytes: forward reads x twice (stats) and once more, writes y; backward reads y, dy, x, writes
  // dy, reads dy and x again and writes dx.
  const double bytes = double(n) * sizeof(float) * (backward ? 7.0 : 4.0);
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  finish(state, e.worst, 0, images);
}

// ---- Objectives and penalties -------------------------------------------------------------------

// gan_loss (BCE, target 0.9) over n logits, checked against the textbook formula in double (the
// loss) and at sampled logits (the gradient). GB/s: 4n read + 4n written.
void BM_GanLoss(benchmark::State& state, int64_t n) {
  const Exec& ex = cpu_exec();
  const LossTerm term{LossKind::BCE, 0.9f, 1.0f};
  const auto logits = random_vector(size_t(n), 1, 3.0f);
  std::vector<float> dl(static_cast<size_t>(n));
  float loss = 0;
  ops::gan_loss<float>(ex, &term, n, logits.data(), dl.data(), &loss, nullptr);
  ErrorTracker e;
  double want = 0;
  for (float l : logits) {
    const double p = 1 / (1 + std::exp(-double(l)));
    want -= 0.9 * std::log(p) + 0.1 * std::log(1 - p);
  }
  e.add(loss, want / double(n), 0.0);
  for (int t = 0; t < 64; ++t) {
    const size_t i = size_t((int64_t(t) * 7919) % n);
    e.add(dl[i], (1 / (1 + std::exp(-double(logits[i]))) - 0.9) / double(n), 1.0 / double(n));
  }
  float sum = 0;
  for (auto _ : state) {
    ops::gan_loss<float>(ex, &term, n, logits.data(), dl.data(), &sum, nullptr);
    benchmark::DoNotOptimize(dl.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(8.0 * double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  finish(state, e.worst, 0, n);
}

// The row statistics and sampled outputs of a layer-norm forward, against direct double loops.
void check_layernorm(ErrorTracker& e, const LayerNormDims& d, const std::vector<float>& x,
                     const std::vector<float>& gamma, const std::vector<float>& beta,
                     const std::vector<float>& sm, const std::vector<float>& si, const std::vector<float>& y,
                     Activation act) {
  for (int64_t r = 0; r < d.rows; r += 13) {
    const float* xr = x.data() + r * d.cols;
    double s = 0, ss = 0;
    for (int64_t j = 0; j < d.cols; ++j) s += xr[j];
    const double mean = s / double(d.cols);
    for (int64_t j = 0; j < d.cols; ++j) ss += (xr[j] - mean) * (xr[j] - mean);
    const double invstd = 1 / std::sqrt(ss / double(d.cols) + double(d.eps));
    e.add(sm[size_t(r)], mean, 1.0);
    e.add(si[size_t(r)], invstd, 0.0);
    for (int64_t j = 0; j < d.cols; j += 997) {
      const size_t c = size_t(j % d.channels);
      e.add(y[size_t(r * d.cols + j)], act_apply(gamma[c] * (xr[j] - mean) * invstd + beta[c], act), 1.0);
    }
  }
}

// layernorm_forward / backward with LeakyReLU fused, a critic's conv features. GB/s counts the
// passes as written: forward reads x three times (mean, deviations, output) and writes y (16 bytes
// per value); backward reads y and dy and writes dy (act'), reads x and dy twice (row sums and
// dx) and writes dx (32 bytes per value).
void BM_LayerNorm(benchmark::State& state, LayerNormDims d, bool backward) {
  const Exec& ex = cpu_exec();
  const Activation act{Act::LeakyReLU, 0.2f};
  const size_t n = size_t(d.rows * d.cols), C = size_t(d.channels), R = size_t(d.rows);
  const auto x = random_vector(n, 1, 2.0f), gamma = random_vector(C, 2), beta = random_vector(C, 3),
             g = random_vector(n, 4);
  std::vector<float> y(n), sm(R), si(R), dy = g, dx(n), dg(C, 0.0f), db(C, 0.0f);
  ops::layernorm_forward<float>(ex, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(), y.data(),
                                act);
  ErrorTracker e;
  check_layernorm(e, d, x, gamma, beta, sm, si, y, act);
  ops::layernorm_backward<float>(ex, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                 dx.data(), false, dg.data(), db.data(), act);
  for (size_t c = 0; c < C; c += 17) {  // dbeta = the sum of d(pre-activation) over rows and positions
    double s = 0;
    for (size_t i = c; i < n; i += C) s += dy[i];
    e.add(db[c], s, std::sqrt(double(n / C)));
  }
  for (auto _ : state) {
    if (backward) {
      state.PauseTiming();
      std::memcpy(dy.data(), g.data(), n * sizeof(float));
      state.ResumeTiming();
      ops::layernorm_backward<float>(ex, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                     dx.data(), false, dg.data(), db.data(), act);
    } else {
      ops::layernorm_forward<float>(ex, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(),
                                    y.data(), act);
    }
    benchmark::ClobberMemory();
  }
  const double bytes = double(n) * (backward ? 32.0 : 16.0);
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  finish(state, e.worst, 0, d.rows);
}

// gradient_penalty (two-sided) of per-sample gradients [batch, per_sample], checked against
// direct double loops (the penalty and sampled values of v). GB/s: g read twice, v written.
void BM_GradientPenalty(benchmark::State& state, int64_t batch, int64_t per) {
  const Exec& ex = cpu_exec();
  const size_t n = size_t(batch * per);
  const auto g = random_vector(n, 1, 0.05f);
  std::vector<float> v(n);
  float penalty = 0;
  ops::gradient_penalty<float>(ex, PenaltyKind::TwoSided, batch, per, g.data(), 10.0f, v.data(), &penalty,
                               nullptr);
  ErrorTracker e;
  double want = 0;
  for (int64_t i = 0; i < batch; ++i) {
    double sq = 0;
    for (int64_t j = 0; j < per; ++j) sq += double(g[size_t(i * per + j)]) * g[size_t(i * per + j)];
    const double norm = std::sqrt(sq);
    want += (norm - 1) * (norm - 1);
    const size_t j = size_t(i * per + (i * 37) % per);
    e.add(v[j], 20.0 * (norm - 1) / norm * g[j] / double(batch), 1e-3);
  }
  e.add(penalty, 10.0 * want / double(batch), 0.0);
  float sum = 0;
  for (auto _ : state) {
    ops::gradient_penalty<float>(ex, PenaltyKind::TwoSided, batch, per, g.data(), 10.0f, v.data(), &sum,
                                 nullptr);
    benchmark::DoNotOptimize(v.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(12.0 * double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  finish(state, e.worst, 0, batch);
}

// ---- Pairwise squared distances ----------------------------------------------------------------

// out[m, n] = ||a_i - b_j||^2, checked at 64 sampled entries against direct differences in double.
// GFLOP/s counts the GEMM's 2 m n d flops (the norms' 2 (m + n) d and the epilogue's 3 m n are left
// out: under 2% at d = 128).
void BM_PairwiseSqDistances(benchmark::State& state, int m, int n, int d) {
  const Exec& ex = cpu_exec();
  const auto a = random_vector(size_t(m) * d, 1), b = random_vector(size_t(n) * d, 2);
  std::vector<float> out(size_t(m) * n);
  ops::pairwise_sq_distances<float>(ex, m, n, d, a.data(), b.data(), out.data());
  ErrorTracker e;
  const double scale = 2.0 * d;  // the expected distance between rows of N(0, 1) entries
  for (int t = 0; t < 64; ++t) {
    const int i = (t * 37) % m, j = (t * 7919) % n;
    double s = 0;
    for (int k = 0; k < d; ++k) {
      const double diff = double(a[size_t(i) * d + k]) - b[size_t(j) * d + k];
      s += diff * diff;
    }
    e.add(out[size_t(i) * n + j], s, scale);
  }
  for (auto _ : state) {
    ops::pairwise_sq_distances<float>(ex, m, n, d, a.data(), b.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, e.worst, 2.0 * m * n * d, m);
}

// ---- Registration ------------------------------------------------------------------------------

std::string conv_name(const char* what, const char* tag, const ConvDims& d, bool transposed) {
  auto shape = [](int h, int w, int c) {
    return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
  };
  const std::string in = transposed ? shape(d.p, d.q, d.k) : shape(d.h, d.w, d.c);
  const std::string out = transposed ? shape(d.h, d.w, d.c) : shape(d.p, d.q, d.k);
  return std::string(what) + "/" + tag + "/" + in + "->" + out + "_k" + std::to_string(d.r) + "s" +
         std::to_string(d.stride) + "p" + std::to_string(d.pad_h);
}

const bool registered = [] {
  // GANCU_CONV_BUDGET_MB: the column budget per chunk of images, to tune it (cpu/im2col.h).
  if (const char* mb = std::getenv("GANCU_CONV_BUDGET_MB"))
    cpu::conv_column_budget_bytes() = size_t(std::atof(mb) * (1 << 20));
  const Activation lrelu{Act::LeakyReLU, 0.2f}, relu{Act::ReLU}, tanh_act{Act::Tanh};
  for (const LinearDims& d :
       {LinearDims{64, 100, 256}, LinearDims{64, 1024, 784}, LinearDims{64, 784, 512}}) {
    const std::string shape = std::to_string(d.in) + "->" + std::to_string(d.out);
    benchmark::RegisterBenchmark(("linear_fwd/" + shape).c_str(), BM_LinearForward, d, lrelu)->UseRealTime();
    benchmark::RegisterBenchmark(("linear_bwd/" + shape).c_str(), BM_LinearBackward, d, lrelu)->UseRealTime();
  }
  struct ConvCase {
    const char* tag;
    ConvDims d;
    Activation act;
    bool transposed;
  };
  const ConvCase convs[] = {
      {"D1", ConvDims::conv(64, 28, 28, 1, 64, 4, 4, 2, 1), lrelu, false},
      {"D2", ConvDims::conv(64, 14, 14, 64, 128, 4, 4, 2, 1), lrelu, false},
      {"G1", ConvDims::transposed(64, 7, 7, 256, 128, 4, 4, 2, 1), relu, true},
      {"G2", ConvDims::transposed(64, 14, 14, 128, 64, 4, 4, 2, 1), relu, true},
      {"G3", ConvDims::conv(64, 28, 28, 64, 1, 3, 3, 1, 1), tanh_act, false},
  };
  for (const ConvCase& c : convs) {
    const char* fwd = c.transposed ? "convT_fwd" : "conv_fwd";
    const char* bwd = c.transposed ? "convT_bwd" : "conv_bwd";
    benchmark::RegisterBenchmark(conv_name(fwd, c.tag, c.d, c.transposed).c_str(), BM_ConvForward, c.d, c.act,
                                 c.transposed)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(conv_name(bwd, c.tag, c.d, c.transposed).c_str(), BM_ConvBackward, c.d,
                                 c.act, c.transposed)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  struct BnCase {
    const char* name;
    BatchNormDims d;
    int images;
  };
  const BnCase bns[] = {{"14x14x128", {64 * 14 * 14, 128}, 64}, {"7x7x128", {64 * 7 * 7, 128}, 64}};
  for (const BnCase& b : bns) {
    benchmark::RegisterBenchmark((std::string("batchnorm_fwd/") + b.name).c_str(), BM_BatchNorm, b.d, relu,
                                 false, b.images)
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("batchnorm_bwd/") + b.name).c_str(), BM_BatchNorm, b.d, relu,
                                 true, b.images)
        ->UseRealTime();
  }
  for (int64_t n : {int64_t(64), int64_t(65536)})
    benchmark::RegisterBenchmark(("gan_loss/bce/" + std::to_string(n)).c_str(), BM_GanLoss, n)->UseRealTime();
  const LayerNormDims critic{64, 14 * 14 * 64, 64};
  benchmark::RegisterBenchmark("layernorm_fwd/14x14x64", BM_LayerNorm, critic, false)->UseRealTime();
  benchmark::RegisterBenchmark("layernorm_bwd/14x14x64", BM_LayerNorm, critic, true)->UseRealTime();
  benchmark::RegisterBenchmark("gradient_penalty/64x784", BM_GradientPenalty, 64, 784)->UseRealTime();
  benchmark::RegisterBenchmark("pairwise_sq_distances/1024x10000x128", BM_PairwiseSqDistances, 1024, 10000,
                               128)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
}  // namespace gancu
