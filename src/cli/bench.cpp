// gancu bench: images per second of the full training iteration (all D steps and the G step,
// as captured for training), and the time of each phase from a separate, synchronized pass.
// Synthetic images of the model's shape: throughput does not depend on pixel values.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"

#if GANCU_CUDA_EMULATION
// The SIMT emulator's running totals (tests/simt/cuda_api.cpp).
extern "C" void gancu_simt_counters(long long* kernels, long long* library_calls, long long* graph_launches,
                                    long long* graph_nodes, long long* copies);
#endif

namespace gancu::cli {

void add_bench(CLI::App& app) {
  struct Flags {
    ModelFlags model;
    std::string warmup = "5";
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("bench", "Time the training iteration (images/s and phases)");
  f->model.add_to(*cmd, false);
  cmd->add_option("--warmup", f->warmup, "Untimed iterations first (default 5)");
  cmd->add_flag("--json", f->json, "Print one JSON object instead of a table");
  cmd->callback([f] {
    std::vector<ConfigOverride> overrides = f->model.overrides();
    if (f->model.steps.empty()) overrides.push_back({"train.steps", "50", "bench default"});
    const Config cfg = load_config(f->model.preset, f->model.config, overrides);
    if (cfg.steps < 1) usage_error("--steps: bench needs at least 1 step");
    const int64_t warmup = std::stoll(f->warmup);
    if (warmup < 0) usage_error("--warmup: must be at least 0, got ", warmup);
    Exec ex = open_backend(cfg.backend, cfg.threads, cfg.math, std::cerr);

    // The image shape is what the generator makes; the data are synthetic images of it.
    const Shape image = generator_image(cfg);
    const Dataset data =
        make_synthetic_dataset(image.h, image.w, image.c, std::max<int64_t>(4096, cfg.batch), 7);
    GanSession s = make_session(cfg, image.with_batch(cfg.batch), cfg.batch, ex);
    Gan& gan = *s.gan;
    gan.initialize(ex);
    const DeviceDataset device_data(ex, data, cfg.batch, cfg.seed);
    const Gan::RealSource& real = device_data.source();

    using Clock = std::chrono::steady_clock;
    StepGraphs graphs(ex, cfg.cuda_graph);
    int64_t step = 0;
    const auto iterate = [&] {
      const uint32_t variant = gan.penalty_steps(step++);
      graphs.run(variant, [&] { gan.train_step(ex, real, nullptr, variant); });
    };
    // A graph's first run is its warm-up and the second its capture: never timed. A lazy penalty
    // has several variants of the iteration; each is captured within its first runs.
    const int64_t variants = gan.objective().penalty() ? gan.objective().penalty_interval() : 1;
    const int64_t untimed = cfg.cuda_graph ? std::max<int64_t>(warmup, 2 * variants) : warmup;
    for (int64_t i = 0; i < untimed; ++i) iterate();
    ex.synchronize();
#if GANCU_CUDA_EMULATION
    // What a GPU would see per iteration: counted by the emulator over the timed loop.
    long long count0[5], count1[5];
    gancu_simt_counters(&count0[0], &count0[1], &count0[2], &count0[3], &count0[4]);
#endif
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < cfg.steps; ++i) iterate();
    ex.synchronize();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
#if GANCU_CUDA_EMULATION
    gancu_simt_counters(&count1[0], &count1[1], &count1[2], &count1[3], &count1[4]);
    const char* count_names[5] = {"kernel_launches", "library_calls", "graph_launches", "graph_nodes",
                                  "memcpys"};
    nlohmann::json per_iter = nlohmann::json::object();
    for (int k = 0; k < 5; ++k) per_iter[count_names[k]] = double(count1[k] - count0[k]) / double(cfg.steps);
#endif
    const double ms_per_iter = 1e3 * seconds / double(cfg.steps);
    const double images_per_s = double(cfg.batch) * double(cfg.steps) / seconds;

    // Phases: a few more iterations, synchronized at each phase boundary (slower than the
    // timed loop above: the fractions are what matter).
    std::vector<std::pair<std::string, double>> phases;
    const int64_t phase_iters = std::min<int64_t>(cfg.steps, 5);
    auto last = Clock::now();
    const PhaseHook hook = [&](const char* name) {
      ex.synchronize();
      const auto now = Clock::now();
      const double ms = std::chrono::duration<double, std::milli>(now - last).count();
      last = now;
      for (auto& p : phases)
        if (p.first == name) return void(p.second += ms);
      phases.push_back({name, ms});
    };
    for (int64_t i = 0; i < phase_iters; ++i) {
      ex.synchronize();
      last = Clock::now();
      gan.train_step(ex, real, hook, gan.penalty_steps(step++));
    }
    for (auto& p : phases) p.second /= double(phase_iters);

    if (f->json) {
      nlohmann::json j = {{"impl", "gancu"},
                          {"preset", cfg.preset},
                          {"backend", backend_name(ex.backend())},
                          {"batch", cfg.batch},
                          {"threads", ex.threads()},
                          {"steps", cfg.steps},
                          {"warmup", warmup},
                          {"d_steps", cfg.d_steps},
                          {"loss", cfg.loss},
                          {"cuda_graph", ex.on_cuda() && cfg.cuda_graph},
                          {"math", cfg.math},
                          {"images_per_s", images_per_s},
                          {"ms_per_iter", ms_per_iter},
                          {"version", GANCU_VERSION}};
      nlohmann::json ph = nlohmann::json::object();
      for (const auto& p : phases) ph[p.first] = p.second;
      j["phases_ms"] = ph;
#if GANCU_CUDA_EMULATION
      j["emulated_per_iter"] = per_iter;
#endif
      std::cout << j.dump() << "\n";
    } else {
      std::printf("gancu bench: %s (%s) on %s, batch %d, %lld steps (%lld warm-up), %d threads\n",
                  cfg.preset.c_str(), cfg.loss.c_str(), backend_name(ex.backend()), cfg.batch,
                  (long long)cfg.steps, (long long)warmup, ex.threads());
      std::printf("  %.3f ms per iteration, %.1f images/s\n", ms_per_iter, images_per_s);
      std::printf("  phases (synchronized, ms per iteration):\n");
      for (const auto& p : phases) std::printf("    %-12s %9.3f\n", p.first.c_str(), p.second);
#if GANCU_CUDA_EMULATION
      if (ex.on_cuda()) {
        std::printf("  per iteration, as a GPU would see it (SIMT emulator; times above are the CPU's):\n");
        for (int k = 0; k < 5; ++k)
          std::printf("    %-16s %9.1f\n", count_names[k], per_iter[count_names[k]].get<double>());
      }
#endif
    }
  });
}

}  // namespace gancu::cli
