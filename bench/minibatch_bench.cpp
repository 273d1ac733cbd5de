// The minibatch-discrimination layer (`mbdisc`) on the CPU: forward and backward of the whole
// layer as a discriminator runs it (M = f T by GEMM, the fused pairwise statistics, [f, o]; then
// the pairwise backward, dT and df by GEMM), at F = 8192 features, A = 100 kernels, C = 5 dims
// (Salimans et al.'s sizes) and batch B = GANCU_MBDISC_BATCHES (default 64, 256, 1024).
// tools/bench_mbdisc.py runs it beside the usual PyTorch implementation (broadcast |M_i - M_j|)
// and records time and peak memory of both (docs/benchmarks/cpu.md).
//
// Checked before timing: o[i, a] at sampled (i, a) against direct loops in double over M
// recomputed from f and T in double; the run fails when the relative error exceeds 1e-4.
// mbdisc_pairwise/B times the fused pairwise ops alone. Counters: items_per_second counts samples;
// `pairs_per_s` counts the B^2 A pair terms of one forward and backward.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_check.h"
#include "gancu/arena.h"
#include "gancu/network.h"
#include "gancu/ops.h"

namespace gancu {
namespace {

constexpr int kFeatures = 8192, kKernels = 100, kDims = 5;

void BM_MinibatchDiscLayer(benchmark::State& state, int batch) {
  Exec ex = Exec::cpu();
  const std::string layer = "mbdisc kernels=" + std::to_string(kKernels) + " dims=" + std::to_string(kDims);
  Network<float> net("D", 2, {layer}, "bench", Shape::features(batch, kFeatures), InitScheme::DCGAN);
  ArenaPlan plan;
  net.plan(plan, ex);
  Arena arena(Backend::CPU, std::move(plan));
  ex.set_workspace(arena.workspace(), arena.workspace_bytes());
  net.bind(arena);
  net.initialize(ex, 1);
  std::mt19937 gen(2);
  // Features of the size a discriminator's last hidden layer has (lrelu outputs, O(1)).
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> f(size_t(batch) * kFeatures), dy(size_t(batch) * (kFeatures + kKernels)), df(f.size());
  for (float& v : f) v = dist(gen);
  for (float& v : dy) v = dist(gen);
  const int64_t step = 0;

  // The check: o[i, a] by direct loops in double.
  net.forward(ex, f.data(), batch, BatchNormMode::Train, &step, 1);
  const float* T = net.params();  // [F, A, C]: the layer's only tensor starts the flat buffer
  double worst = 0;
  for (int t = 0; t < 4; ++t) {
    const int a = (t * 37) % kKernels, i = (t * 101) % batch;
    std::vector<double> m(size_t(batch) * kDims, 0.0);  // M[:, a, :]
    for (int j = 0; j < batch; ++j)
      for (int k = 0; k < kFeatures; ++k) {
        const double x = f[size_t(j) * kFeatures + k];
        for (int c = 0; c < kDims; ++c)
          m[size_t(j) * kDims + c] += x * T[(size_t(k) * kKernels + a) * kDims + c];
      }
    double o = 0;
    for (int j = 0; j < batch; ++j) {
      double d = 0;
      for (int c = 0; c < kDims; ++c) d += std::fabs(m[size_t(i) * kDims + c] - m[size_t(j) * kDims + c]);
      o += std::exp(-d);
    }
    const double got = net.output()[size_t(i) * (kFeatures + kKernels) + kFeatures + a];
    worst = std::max(worst, std::fabs(got - o) / std::fabs(o));
  }

  for (auto _ : state) {
    net.forward(ex, f.data(), batch, BatchNormMode::Train, &step, 1);
    std::copy(dy.begin(), dy.end(), net.output_grad());
    net.backward(ex, df.data(), false, true);
    benchmark::DoNotOptimize(df.data());
  }
  state.counters["err"] = worst;
  state.counters["pairs_per_s"] =
      benchmark::Counter(double(batch) * batch * kKernels, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["arena_MB"] = double(arena.total_bytes()) / (1 << 20);
  state.SetItemsProcessed(int64_t(state.iterations()) * batch);
  if (!bench::within(worst, 1e-4)) bench::check_failed(state, "err " + std::to_string(worst));
}

// The pairwise part alone (mbdisc_forward and mbdisc_backward on M [B, A, C]), to split the
// layer's time between it and the three GEMMs. Checked like the layer, at sampled o[i, a].
void BM_MinibatchDiscPairwise(benchmark::State& state, int batch) {
  const Exec ex = Exec::cpu();
  const MinibatchDiscDims d{batch, kKernels, kDims, kKernels};
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> m(size_t(batch) * kKernels * kDims), dout(size_t(batch) * kKernels), o(dout.size()),
      dm(m.size());
  for (float& v : m) v = dist(gen);
  for (float& v : dout) v = dist(gen);
  ops::mbdisc_forward<float>(ex, d, m.data(), o.data());
  double worst = 0;
  for (int t = 0; t < 16; ++t) {
    const int i = (t * 101) % batch, a = (t * 37) % kKernels;
    double want = 0;
    for (int j = 0; j < batch; ++j) {
      double s = 0;
      for (int c = 0; c < kDims; ++c)
        s += std::fabs(double(m[(size_t(i) * kKernels + a) * kDims + c]) -
                       m[(size_t(j) * kKernels + a) * kDims + c]);
      want += std::exp(-s);
    }
    worst = std::max(worst, std::fabs(o[size_t(i) * kKernels + a] - want) / want);
  }
  for (auto _ : state) {
    ops::mbdisc_forward<float>(ex, d, m.data(), o.data());
    ops::mbdisc_backward<float>(ex, d, m.data(), dout.data(), dm.data());
    benchmark::DoNotOptimize(dm.data());
  }
  state.counters["err"] = worst;
  state.counters["pairs_per_s"] =
      benchmark::Counter(double(batch) * batch * kKernels, benchmark::Counter::kIsIterationInvariantRate);
  if (!bench::within(worst, 1e-4)) bench::check_failed(state, "err " + std::to_string(worst));
}

const bool registered = [] {
  std::string list = "64,256,1024";
  if (const char* env = std::getenv("GANCU_MBDISC_BATCHES")) list = env;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    const int batch = std::atoi(item.c_str());
    if (batch <= 0) continue;
    benchmark::RegisterBenchmark(("mbdisc_layer/" + std::to_string(batch)).c_str(), BM_MinibatchDiscLayer,
                                 batch)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("mbdisc_pairwise/" + std::to_string(batch)).c_str(),
                                 BM_MinibatchDiscPairwise, batch)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
}  // namespace gancu
