// The whole training iteration (all D steps and the G step, Gan::train_step) of each preset, on
// the CPU and, where a GPU is present, on CUDA (captured as a CUDA graph, as in training).
// items_per_second counts images of the batch. Synthetic images: throughput does not depend on
// pixel values. Before timing, one iteration runs and its losses must be finite.
#include <benchmark/benchmark.h>

#include <memory>

#include "bench_check.h"
#include "gancu/config.h"
#include "gancu/data.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"

namespace gancu {
namespace {

void BM_Iteration(benchmark::State& state, const char* preset, Backend backend) {
  std::string why;
  if (backend == Backend::CUDA && !cuda_available(&why)) {
    bench::no_device(state, why);
    return;
  }
  const int batch = int(state.range(0));
  const Config cfg = load_config(preset, "", {{"train.batch", std::to_string(batch), "bench"}});
  Exec ex = backend == Backend::CUDA ? Exec::cuda(0) : Exec::cpu();
  const Shape image = generator_image(cfg);
  const Dataset data = make_synthetic_dataset(image.h, image.w, image.c, std::max(4096, batch), 7);
  GanSession s = make_session(cfg, image.with_batch(batch), batch, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, batch, cfg.seed);
  const Gan::RealSource& real = device_data.source();
  StepGraph graph(ex, cfg.cuda_graph);
  const auto step = [&] { graph.run([&] { s.gan->train_step(ex, real); }); };
  step();  // a graph's warm-up (direct run)
  step();  // and its capture: neither is timed
  if (!bench::within(s.gan->read_metrics(ex).finite() ? 0.0 : 1.0, 0.0)) {
    bench::check_failed(state, "the first iteration gave non-finite losses");
    return;
  }
  for (auto _ : state) {
    step();
    ex.synchronize();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

BENCHMARK_CAPTURE(BM_Iteration, mlp_cpu, "mlp", Backend::CPU)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Iteration, dcgan_cpu, "dcgan", Backend::CPU)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Iteration, dcgan32_cpu, "dcgan32", Backend::CPU)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Iteration, mlp_cuda, "mlp", Backend::CUDA)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Iteration, dcgan_cuda, "dcgan", Backend::CUDA)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Iteration, dcgan32_cuda, "dcgan32", Backend::CUDA)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gancu
