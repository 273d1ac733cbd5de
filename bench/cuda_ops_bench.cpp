// Google Benchmark of the CUDA backend's own kernels (those that are not cuBLAS or cuDNN):
// gan_loss, adam_step over 3.6M parameters, batch norm forward and backward at the dcgan
// shapes, layer norm forward and backward at a critic's shape, gradient_penalty, gather_batch,
// fill_noise, the bias + activation epilogue, and pairwise_sq_distances
// (cuBLAS GEMM + the norm and epilogue kernels, the k-NN metrics' hot spot).
//
// Method (as nccl-tests and llm.c do): each case first runs the op once on the GPU and once on the
// CPU backend and checks the relative error (reported as the counter `rel_err`; a case whose
// check fails is skipped with the error instead of timed). Then three warm-up runs, then each
// timed iteration: the L2 cache is flushed (a memset of twice its size, outside the timed
// region), and the op alone is timed with CUDA events on the Exec's stream (manual time).
//
// Bandwidth `GB/s` = bytes read + bytes written by the op per run / time, with the bytes each
// case counts written next to it (the per-channel vectors and scalars are left out: they are
// < 1% everywhere here). Without a CUDA device every case is skipped with "no CUDA device: ...".
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_check.h"
#include "gancu/exec.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

#if GANCU_HAVE_CUDA
#include <cuda_runtime.h>

#include "gancu/check.h"

namespace gancu::cuda {
// The bias + activation epilogue of linear and convolution layers (kernels/elementwise.cu);
// not an op of ops.h, so declared here for its benchmark.
void bias_act(const Exec& ex, int64_t rows, int channels, const float* b, float* y, Activation act);
}  // namespace gancu::cuda
#endif

namespace gancu {
namespace {

[[maybe_unused]] std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

[[maybe_unused]] double rel_error(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!std::isfinite(gpu[i])) return INFINITY;
    const double d = double(gpu[i]) - double(cpu[i]);
    num += d * d;
    den += double(cpu[i]) * double(cpu[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

#if GANCU_HAVE_CUDA

// The GPU side of a case: the Exec, its stream, two events and the L2 flush buffer.
class GpuCase {
 public:
  // False (and the case skipped) without a usable device.
  bool init(benchmark::State& state) {
    std::string why;
    if (!cuda_available(&why)) {
      bench::no_device(state, why);
      return false;
    }
    gpu_ = Exec::cuda(0);
    stream_ = static_cast<cudaStream_t>(gpu_.cuda_stream());
    int device = 0, l2 = 0;
    GANCU_CUDA_CHECK(cudaGetDevice(&device));
    GANCU_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    flush_bytes_ = size_t(std::max(l2, 1 << 20)) * 2;
    flush_ = Buffer<uint8_t>(gpu_, flush_bytes_);
    GANCU_CUDA_CHECK(cudaEventCreate(&start_));
    GANCU_CUDA_CHECK(cudaEventCreate(&stop_));
    return true;
  }
  ~GpuCase() {
    if (start_) (void)cudaEventDestroy(start_);
    if (stop_) (void)cudaEventDestroy(stop_);
  }
  Exec& ex() { return gpu_; }

  // Skips the case when the check failed; records the error either way.
  bool check(benchmark::State& state, double err, double bound, const char* what) {
    state.counters["rel_err"] = err;
    if (bench::within(err, bound)) return true;
    bench::check_failed(state, std::string(what) + ": GPU differs from CPU, relative error " +
                                   std::to_string(err) + " > " + std::to_string(bound));
    return false;
  }

  // Warm-up, then times `op` per iteration with events; `bytes` moved per run.
  template <class F>
  void time(benchmark::State& state, F&& op, double bytes) {
    for (int i = 0; i < 3; ++i) op();
    GANCU_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (auto _ : state) {
      GANCU_CUDA_CHECK(cudaMemsetAsync(flush_.data(), int(state.iterations() & 0xff), flush_bytes_, stream_));
      GANCU_CUDA_CHECK(cudaEventRecord(start_, stream_));
      op();
      GANCU_CUDA_CHECK(cudaEventRecord(stop_, stream_));
      GANCU_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0.0f;
      GANCU_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      state.SetIterationTime(double(ms) * 1e-3);
    }
    state.SetBytesProcessed(int64_t(double(state.iterations()) * bytes));
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bytes"] = bytes;
  }

 private:
  Exec gpu_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  Buffer<uint8_t> flush_;
  size_t flush_bytes_ = 0;
};

// gan_loss (BCE, target 1) over n logits. Bytes: 4n read (logits) + 4n written (dlogits).
void BM_GanLoss(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int64_t n = state.range(0);
  const LossTerm term{LossKind::BCE, 1.0f, 1.0f};
  const auto logits = random_vec(size_t(n), 1, -8.0f, 8.0f);
  std::vector<float> dl(static_cast<size_t>(n)), sums(2, 0.0f);
  Buffer<float> gl(g.ex(), logits), gdl(g.ex(), size_t(n)), gs(g.ex(), sums);
  Buffer<LossTerm> gterm(g.ex(), std::vector<LossTerm>{term});
  const Exec cpu = Exec::cpu();
  ops::gan_loss<float>(cpu, &term, n, logits.data(), dl.data(), &sums[0], &sums[1]);
  ops::gan_loss<float>(g.ex(), gterm.data(), n, gl.data(), gdl.data(), gs.data(), gs.data() + 1);
  if (!g.check(state, std::max(rel_error(gdl.download(), dl), rel_error(gs.download(), sums)), 1e-5,
               "gan_loss"))
    return;
  g.time(
      state,
      [&] { ops::gan_loss<float>(g.ex(), gterm.data(), n, gl.data(), gdl.data(), gs.data(), gs.data() + 1); },
      8.0 * double(n));
}

// adam_step over n parameters. Bytes: 16n read (param, grad, m, v) + 12n written (param, m, v).
void BM_Adam(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int64_t n = state.range(0);
  auto p = random_vec(size_t(n), 1), gr = random_vec(size_t(n), 2), m = random_vec(size_t(n), 3, -0.1f, 0.1f);
  auto v = random_vec(size_t(n), 4, 0.0f, 0.01f);
  Buffer<float> gp(g.ex(), p), gg(g.ex(), gr), gm(g.ex(), m), gv(g.ex(), v);
  Buffer<int64_t> gt(g.ex(), std::vector<int64_t>{0});
  int64_t t = 0;
  const AdamHyper h;
  Buffer<AdamHyper> gh(g.ex(), std::vector<AdamHyper>{h});
  const Exec cpu = Exec::cpu();
  ops::adam_step<float>(cpu, n, p.data(), gr.data(), m.data(), v.data(), &h, &t);
  ops::adam_step<float>(g.ex(), n, gp.data(), gg.data(), gm.data(), gv.data(), gh.data(), gt.data());
  if (!g.check(state, rel_error(gp.download(), p), 1e-5, "adam")) return;
  g.time(
      state,
      [&] {
        ops::adam_step<float>(g.ex(), n, gp.data(), gg.data(), gm.data(), gv.data(), gh.data(), gt.data());
      },
      28.0 * double(n));
}

// The dcgan batch-norm shapes, by index: rows x channels.
const BatchNormDims kBn[] = {
    {64, 12544, 0.1f, 1e-5f},          // G, after the linear layer (features)
    {64 * 14 * 14, 128, 0.1f, 1e-5f},  // G, after the first transposed conv
    {64 * 28 * 28, 64, 0.1f, 1e-5f},   // G, after the second transposed conv
    {64 * 7 * 7, 128, 0.1f, 1e-5f},    // D, after the second conv
};

// batchnorm_forward, Train, ReLU fused. Bytes for N = rows x channels values: 4N read (stats) +
// 4N read + 4N written (normalize) = 12N.
void BM_BatchNormForward(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const BatchNormDims d = kBn[state.range(0)];
  const size_t N = size_t(d.count) * d.channels, C = size_t(d.channels);
  const auto x = random_vec(N, 1, -1.0f, 3.0f), gamma = random_vec(C, 2, 0.5f, 1.5f), beta = random_vec(C, 3);
  std::vector<float> rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), y(N);
  Buffer<float> gx(g.ex(), x), gga(g.ex(), gamma), gbe(g.ex(), beta), grm(g.ex(), rm), grv(g.ex(), rv);
  Buffer<float> gsm(g.ex(), C), gsi(g.ex(), C), gy(g.ex(), N);
  const Activation act{Act::ReLU, 0.2f};
  const Exec cpu = Exec::cpu();
  ops::batchnorm_forward<float>(cpu, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), sm.data(), si.data(), y.data(), act);
  auto run = [&] {
    ops::batchnorm_forward<float>(g.ex(), d, BatchNormMode::Train, gx.data(), gga.data(), gbe.data(),
                                  grm.data(), grv.data(), gsm.data(), gsi.data(), gy.data(), act);
  };
  run();
  if (!g.check(state, rel_error(gy.download(), y), 1e-4, "batchnorm forward")) return;
  state.SetLabel(std::to_string(d.count) + "x" + std::to_string(d.channels));
  g.time(state, run, 12.0 * double(N));
}

// batchnorm_backward, ReLU fused, dx overwritten. Bytes: 12N read (x, dy, y) + 4N written (dy,
// in place) in the reduction; 8N read (x, dy) + 4N written (dx) in the dx pass = 28N.
void BM_BatchNormBackward(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const BatchNormDims d = kBn[state.range(0)];
  const size_t N = size_t(d.count) * d.channels, C = size_t(d.channels);
  const auto x = random_vec(N, 1, -1.0f, 3.0f), gamma = random_vec(C, 2, 0.5f, 1.5f), beta = random_vec(C, 3);
  std::vector<float> rm(C, 0.0f), rv(C, 1.0f), sm(C), si(C), y(N);
  const Activation act{Act::ReLU, 0.2f};
  const Exec cpu = Exec::cpu();
  ops::batchnorm_forward<float>(cpu, d, BatchNormMode::Train, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), sm.data(), si.data(), y.data(), act);
  const auto dy0 = random_vec(N, 4);
  auto dy = dy0;
  std::vector<float> dx(N), dg(C, 0.0f), db(C, 0.0f);
  Buffer<float> gx(g.ex(), x), gga(g.ex(), gamma), gsm(g.ex(), sm), gsi(g.ex(), si), gy(g.ex(), y);
  Buffer<float> gdy(g.ex(), dy0), gdx(g.ex(), N), gdg(g.ex(), dg), gdb(g.ex(), db);
  ops::batchnorm_backward<float>(cpu, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                 dx.data(), false, dg.data(), db.data(), act);
  auto run = [&] {
    // dy is rewritten in place (times act'(y), idempotent for ReLU's 0/1 mask), so reruns stay valid.
    ops::batchnorm_backward<float>(g.ex(), d, gx.data(), gga.data(), gsm.data(), gsi.data(), gy.data(),
                                   gdy.data(), gdx.data(), false, gdg.data(), gdb.data(), act);
  };
  run();
  if (!g.check(state, rel_error(gdx.download(), dx), 1e-4, "batchnorm backward")) return;
  state.SetLabel(std::to_string(d.count) + "x" + std::to_string(d.channels));
  g.time(state, run, 28.0 * double(N));
}

// layernorm_forward (LeakyReLU fused) / backward (ReLU fused, see below), a critic's conv features
// [64, 14x14x64]. Bytes
// for N values as the kernels pass over them: forward reads x three times (mean, deviations,
// output) and writes y = 16N; backward reads x, y and dy and writes dy in the per-channel pass
// (16N), then reads x and dy twice and writes dx in the row pass (20N) = 36N.
void BM_LayerNorm(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const bool backward = state.range(0) != 0;
  const LayerNormDims d{64, 14 * 14 * 64, 64};
  const size_t N = size_t(d.rows * d.cols), C = size_t(d.channels), R = size_t(d.rows);
  // Backward rewrites dy in place (times act'(y)): with ReLU's 0/1 mask reruns stay valid (as the
  // batch-norm case); LeakyReLU would shrink the negative side's dy by the slope at every rerun.
  const Activation act = backward ? Activation{Act::ReLU, 0.0f} : Activation{Act::LeakyReLU, 0.2f};
  const auto x = random_vec(N, 1, -1.0f, 3.0f), gamma = random_vec(C, 2, 0.5f, 1.5f), beta = random_vec(C, 3);
  const auto dy0 = random_vec(N, 4);
  std::vector<float> y(N), sm(R), si(R), dy = dy0, dx(N), dg(C, 0.0f), db(C, 0.0f);
  const Exec cpu = Exec::cpu();
  ops::layernorm_forward<float>(cpu, d, x.data(), gamma.data(), beta.data(), sm.data(), si.data(), y.data(),
                                act);
  ops::layernorm_backward<float>(cpu, d, x.data(), gamma.data(), sm.data(), si.data(), y.data(), dy.data(),
                                 dx.data(), false, dg.data(), db.data(), act);
  Buffer<float> gx(g.ex(), x), gga(g.ex(), gamma), gbe(g.ex(), beta), gsm(g.ex(), R), gsi(g.ex(), R);
  Buffer<float> gy(g.ex(), N), gdy(g.ex(), dy0), gdx(g.ex(), N), gdg(g.ex(), C), gdb(g.ex(), C);
  auto forward = [&] {
    ops::layernorm_forward<float>(g.ex(), d, gx.data(), gga.data(), gbe.data(), gsm.data(), gsi.data(),
                                  gy.data(), act);
  };
  auto bwd = [&] {
    ops::layernorm_backward<float>(g.ex(), d, gx.data(), gga.data(), gsm.data(), gsi.data(), gy.data(),
                                   gdy.data(), gdx.data(), false, gdg.data(), gdb.data(), act);
  };
  forward();
  if (!g.check(state, rel_error(gy.download(), y), 1e-4, "layernorm forward")) return;
  if (backward) {
    bwd();
    if (!g.check(state, rel_error(gdx.download(), dx), 1e-4, "layernorm backward")) return;
  }
  state.SetLabel("64x14x14x64 " + std::string(backward ? "backward" : "forward"));
  if (backward)
    g.time(state, bwd, 36.0 * double(N));
  else
    g.time(state, forward, 16.0 * double(N));
}

// gradient_penalty (two-sided) over [64, 784] gradients. Bytes: g read twice (norm, then v) + v
// written = 12 per value.
void BM_GradientPenalty(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int64_t batch = 64, per = 784;
  const size_t n = size_t(batch * per);
  const auto grad = random_vec(n, 1, -0.05f, 0.05f);
  std::vector<float> v(n), sums(2, 0.0f);
  const Exec cpu = Exec::cpu();
  ops::gradient_penalty<float>(cpu, PenaltyKind::TwoSided, batch, per, grad.data(), 10.0f, v.data(), &sums[0],
                               &sums[1]);
  Buffer<float> gg(g.ex(), grad), gv(g.ex(), n), gs(g.ex(), std::vector<float>(2, 0.0f));
  auto run = [&] {
    ops::gradient_penalty<float>(g.ex(), PenaltyKind::TwoSided, batch, per, gg.data(), 10.0f, gv.data(),
                                 gs.data(), gs.data() + 1);
  };
  run();
  if (!g.check(state, std::max(rel_error(gv.download(), v), rel_error(gs.download(), sums)), 1e-5,
               "gradient_penalty"))
    return;
  g.time(state, run, 12.0 * double(n));
}

// gather_batch: batch x 784 (Fashion-MNIST) from 60000 images. Bytes: E read (uint8) + 4E
// written (float) per image = 5 x batch x 784.
void BM_GatherBatch(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  BatchGather bg;
  bg.num_images = 60000;
  bg.image_elems = 784;
  bg.batch = int(state.range(0));
  bg.seed = 3;
  std::mt19937 gen(5);
  std::vector<uint8_t> images(size_t(bg.num_images * bg.image_elems));
  for (auto& b : images) b = uint8_t(gen());
  Buffer<uint8_t> gi(g.ex(), images);
  Buffer<int64_t> gstep(g.ex(), std::vector<int64_t>{17});
  const int64_t step = 17;
  std::vector<float> out(size_t(bg.batch * bg.image_elems));
  Buffer<float> gout(g.ex(), out.size());
  const Exec cpu = Exec::cpu();
  ops::gather_batch<float>(cpu, bg, images.data(), &step, out.data());
  ops::gather_batch<float>(g.ex(), bg, gi.data(), gstep.data(), gout.data());
  const auto go = gout.download();
  const double err =
      std::memcmp(go.data(), out.data(), out.size() * sizeof(float)) == 0 ? 0.0 : rel_error(go, out);
  if (!g.check(state, err, 0.0, "gather_batch (bit-for-bit)")) return;
  g.time(
      state, [&] { ops::gather_batch<float>(g.ex(), bg, gi.data(), gstep.data(), gout.data()); },
      5.0 * double(bg.batch) * double(bg.image_elems));
}

// fill_noise, normal. Bytes: 4n written.
void BM_FillNoise(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int64_t n = state.range(0);
  Buffer<int64_t> gstep(g.ex(), std::vector<int64_t>{9});
  const int64_t step = 9;
  std::vector<float> z(static_cast<size_t>(n));
  Buffer<float> gz(g.ex(), size_t(n));
  const Exec cpu = Exec::cpu();
  ops::fill_noise<float>(cpu, n, z.data(), NoiseKind::Normal, 1, kStreamNoiseD, &step);
  ops::fill_noise<float>(g.ex(), n, gz.data(), NoiseKind::Normal, 1, kStreamNoiseD, gstep.data());
  if (!g.check(state, rel_error(gz.download(), z), 1e-5, "fill_noise")) return;
  g.time(
      state,
      [&] {
        ops::fill_noise<float>(g.ex(), n, gz.data(), NoiseKind::Normal, 1, kStreamNoiseD, gstep.data());
      },
      4.0 * double(n));
}

// The bias + LeakyReLU epilogue over a dcgan conv output [rows, channels], checked against the
// CPU's activation_forward of (y + b). Bytes: 4N read + 4N written.
void BM_BiasAct(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int64_t rows = state.range(0);
  const int C = int(state.range(1));
  const size_t N = size_t(rows) * C;
  const auto y0 = random_vec(N, 1), b = random_vec(size_t(C), 2);
  std::vector<float> ref(N);
  for (size_t i = 0; i < N; ++i) ref[i] = y0[i] + b[i % size_t(C)];
  const Activation act{Act::LeakyReLU, 0.2f};
  const Exec cpu = Exec::cpu();
  ops::activation_forward<float>(cpu, int64_t(N), ref.data(), ref.data(), act);
  Buffer<float> gy(g.ex(), y0), gb(g.ex(), b);
  cuda::bias_act(g.ex(), rows, C, gb.data(), gy.data(), act);
  if (!g.check(state, rel_error(gy.download(), ref), 1e-5, "bias_act")) return;
  // Reruns keep adding the bias: the values drift, the traffic does not.
  g.time(
      state, [&] { cuda::bias_act(g.ex(), rows, C, gb.data(), gy.data(), act); }, 8.0 * double(N));
}

// pairwise_sq_distances, m x n x d = range(0..2), TF32 when range(3) is 1; checked against the
// whole CPU result (bound 1e-4 fp32, 5e-3 TF32). GFLOP/s counts the GEMM's 2 m n d flops (the
// norms and the epilogue are left out: under 2% at d = 128). Bytes: 4 (m + n) d read twice (norms,
// GEMM) + 4 m n written by the GEMM + 8 m n read and written by the epilogue.
void BM_PairwiseSqDistances(benchmark::State& state) {
  GpuCase g;
  if (!g.init(state)) return;
  const int m = int(state.range(0)), n = int(state.range(1)), d = int(state.range(2));
  const bool tf32 = state.range(3) != 0;
  g.ex().set_tf32(tf32);
  const auto a = random_vec(size_t(m) * d, 1), b = random_vec(size_t(n) * d, 2);
  std::vector<float> out(size_t(m) * n);
  Buffer<float> ga(g.ex(), a), gb(g.ex(), b), gout(g.ex(), out.size());
  const Exec cpu = Exec::cpu();
  ops::pairwise_sq_distances<float>(cpu, m, n, d, a.data(), b.data(), out.data());
  auto run = [&] { ops::pairwise_sq_distances<float>(g.ex(), m, n, d, ga.data(), gb.data(), gout.data()); };
  run();
  if (!g.check(state, rel_error(gout.download(), out), tf32 ? 5e-3 : 1e-4, "pairwise_sq_distances")) return;
  state.SetLabel(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(d) +
                 (tf32 ? " tf32" : " fp32"));
  const double flops = 2.0 * m * n * double(d);
  g.time(state, run, 8.0 * (double(m) + n) * d + 12.0 * double(m) * n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

#define GANCU_GPU_BENCH(fn) BENCHMARK(fn)->UseManualTime()->Unit(benchmark::kMicrosecond)

#else  // built without CUDA: the same cases, each skipped

#define GANCU_NO_CUDA_CASE(fn)                                 \
  void fn(benchmark::State& state) {                           \
    bench::no_device(state, "built without the CUDA backend"); \
  }
GANCU_NO_CUDA_CASE(BM_GanLoss)
GANCU_NO_CUDA_CASE(BM_Adam)
GANCU_NO_CUDA_CASE(BM_BatchNormForward)
GANCU_NO_CUDA_CASE(BM_BatchNormBackward)
GANCU_NO_CUDA_CASE(BM_LayerNorm)
GANCU_NO_CUDA_CASE(BM_GradientPenalty)
GANCU_NO_CUDA_CASE(BM_GatherBatch)
GANCU_NO_CUDA_CASE(BM_FillNoise)
GANCU_NO_CUDA_CASE(BM_BiasAct)
GANCU_NO_CUDA_CASE(BM_PairwiseSqDistances)
#undef GANCU_NO_CUDA_CASE
#define GANCU_GPU_BENCH(fn) BENCHMARK(fn)

#endif

GANCU_GPU_BENCH(BM_GanLoss)->Name("cuda/gan_loss")->Arg(64)->Arg(65536);
GANCU_GPU_BENCH(BM_Adam)->Name("cuda/adam_step")->Arg(3600000);
GANCU_GPU_BENCH(BM_BatchNormForward)->Name("cuda/batchnorm_forward")->DenseRange(0, 3);
GANCU_GPU_BENCH(BM_BatchNormBackward)->Name("cuda/batchnorm_backward")->DenseRange(0, 3);
GANCU_GPU_BENCH(BM_LayerNorm)->Name("cuda/layernorm")->Arg(0)->Arg(1);
GANCU_GPU_BENCH(BM_GradientPenalty)->Name("cuda/gradient_penalty/64x784");
GANCU_GPU_BENCH(BM_GatherBatch)->Name("cuda/gather_batch")->Arg(64)->Arg(1024);
GANCU_GPU_BENCH(BM_FillNoise)->Name("cuda/fill_noise")->Arg(6400)->Arg(1 << 20);
GANCU_GPU_BENCH(BM_PairwiseSqDistances)
    ->Name("cuda/pairwise_sq_distances")
    ->Args({1024, 10000, 128, 0})
    ->Args({1024, 10000, 128, 1});
GANCU_GPU_BENCH(BM_BiasAct)
    ->Name("cuda/bias_act")
    ->Args({64 * 14 * 14, 64})
    ->Args({64 * 7 * 7, 128})
    ->Args({64 * 28 * 28, 1});

}  // namespace
}  // namespace gancu
