// gancu bench: images per second of the full training iteration (all D steps and the G step,
// as captured for training), and the time of each phase from a separate, synchronized pass.
// Synthetic images of the model's shape: throughput does not depend on pixel values.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/comm.h"
#include "gancu/data.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"
#include "gancu/step_agreement.h"

#if GANCU_CUDA_EMULATION
// The SIMT emulator's running totals (tests/simt/cuda_api.cpp).
extern "C" void gancu_simt_counters(long long* kernels, long long* library_calls, long long* graph_launches,
                                    long long* graph_nodes, long long* copies);
// Byte counting of the emulated kernels' device memory traffic (tests/simt/access_count.cpp):
// returns 0 where the build cannot count (gcc).
extern "C" int gancu_simt_count_bytes(int on);
extern "C" void gancu_simt_bytes(long long* read, long long* written);
extern "C" const char* gancu_simt_kernel_traffic(int top);
#endif

namespace gancu::cli {
namespace {

// What is timed must be right: finite losses after the warm-up, and on the CUDA backend one SGD
// step that agrees with the CPU backend's (at batch 256 at most: the CPU's step is the cost).
// Returns the agreement's relative error (0 on the CPU); a failure ends bench with exit 1 and no
// number.
double check_before_timing(const Config& cfg, const GanMetrics& warm, Exec& ex) {
  if (!warm.finite())
    runtime_error("gancu bench: the warm-up iterations give non-finite losses (D ", warm.loss_d, ", G ",
                  warm.loss_g, "): nothing to time");
  if (!ex.on_cuda()) return 0.0;
  Exec cpu = Exec::cpu(cfg.threads);
  const int batch = std::min(cfg.batch, 256);
  const StepAgreement a = compare_one_step(cfg, batch, ex, cpu);
  const double bound = step_agreement_bound(cfg.math);
  if (!a.finite || !(a.worst() <= bound))
    runtime_error("gancu bench: one SGD step on ", backend_name(ex.backend()),
                  " differs from the CPU backend's (batch ", batch, ": relative error of the update G ",
                  a.rel_err_g, ", D ", a.rel_err_d, ", bound ", bound, a.finite ? "" : ", non-finite losses",
                  "): not timing a wrong iteration");
  std::fprintf(
      stderr,
      "gancu bench: one SGD step agrees with the CPU backend (batch %d, update error G %.1e, D %.1e)\n",
      batch, a.rel_err_g, a.rel_err_d);
  return a.worst();
}

#if GANCU_CUDA_EMULATION
// The emulator's per-kernel lines ("name launches read written", totals over `steps`) as a table
// per iteration, in MB.
std::string traffic_table(const char* lines, int64_t steps) {
  std::istringstream in(lines);
  std::string name;
  long long launches = 0, read = 0, written = 0;
  std::ostringstream out;
  while (in >> name >> launches >> read >> written) {
    char row[256];
    std::snprintf(row, sizeof row, "    %-36s %5.1f launches %10.3f MB read %10.3f MB written\n",
                  name.c_str(), double(launches) / double(steps), 1e-6 * double(read) / double(steps),
                  1e-6 * double(written) / double(steps));
    out << row;
  }
  return out.str();
}
#endif

}  // namespace

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
    if (cfg.supervised())
      usage_error(
          "train.mode = supervised: gancu bench times the adversarial iteration; time a supervised "
          "generator with gancu train (its log reports steps/s)");
    if (cfg.steps < 1) usage_error("--steps: bench needs at least 1 step");
    const int64_t warmup = std::stoll(f->warmup);
    if (warmup < 0) usage_error("--warmup: must be at least 0, got ", warmup);
    // Under mpirun each rank times its shard of the global batch; rank 0 reports for the job.
    Communicator& comm = world();
    comm.set_timeout(cfg.collective_timeout_s);
    const bool leader = comm.rank() == 0;
    std::ostringstream quiet;
    Exec ex = open_backend(cfg.backend, cfg.threads, cfg.math, leader ? std::cerr : quiet);

    // The image shape is what the generator makes; the data are synthetic images of it.
    const Shape image = generator_image(cfg);
    const Dataset data =
        make_synthetic_dataset(image.h, image.w, image.c, std::max<int64_t>(4096, cfg.batch), 7);
    const Shard shard = shard_of(cfg.batch);
    GanSession s = make_session(cfg, image.with_batch(shard.batch), shard, ex);
    comm.prepare(ex);
    Gan& gan = *s.gan;
    gan.initialize(ex);
    const DeviceDataset device_data(ex, data, shard, cfg.seed);
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
    const double check_err = check_before_timing(cfg, gan.read_metrics(ex), ex);
#if GANCU_CUDA_EMULATION
    // What a GPU would see per iteration: counted by the emulator over the timed loop.
    long long count0[7], count1[7];
    const bool bytes_counted = gancu_simt_count_bytes(1) != 0;
    gancu_simt_counters(&count0[0], &count0[1], &count0[2], &count0[3], &count0[4]);
    gancu_simt_bytes(&count0[5], &count0[6]);
#endif
    comm.barrier("the start of the timed loop");
    const double collective0 = comm.collective_seconds();
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < cfg.steps; ++i) iterate();
    ex.synchronize();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const double allreduce_ms = 1e3 * (comm.collective_seconds() - collective0) / double(cfg.steps);
#if GANCU_CUDA_EMULATION
    gancu_simt_counters(&count1[0], &count1[1], &count1[2], &count1[3], &count1[4]);
    gancu_simt_bytes(&count1[5], &count1[6]);
    gancu_simt_count_bytes(0);
    const char* count_names[7] = {"kernel_launches",     "library_calls", "graph_launches",
                                  "graph_nodes",         "memcpys",       "kernel_bytes_read",
                                  "kernel_bytes_written"};
    const int counts_known = bytes_counted ? 7 : 5;
    nlohmann::json per_iter = nlohmann::json::object();
    for (int k = 0; k < counts_known; ++k)
      per_iter[count_names[k]] = double(count1[k] - count0[k]) / double(cfg.steps);
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
    if (!leader) return;

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
                          {"check_rel_err", check_err},
                          {"ranks", comm.size()},
                          {"params_g", gan.generator().param_count()},
                          {"params_d", gan.discriminator().param_count()},
                          // What a data-parallel iteration all-reduces: D's gradients after each
                          // D step, G's once (fp32, the flat buffers with their alignment padding).
                          {"allreduce_bytes_per_iter", 4 * (cfg.d_steps * gan.discriminator().param_count() +
                                                            gan.generator().param_count())},
                          {"allreduce_ms_per_iter", allreduce_ms},
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
      if (comm.size() > 1)
        std::printf(
            "  %d ranks (%s), %d images each; rank 0 spent %.3f ms per iteration (%.1f%%) in all-reduces\n",
            comm.size(), comm.describe().c_str(), shard.batch, allreduce_ms,
            100.0 * allreduce_ms / ms_per_iter);
      std::printf("  phases (synchronized, ms per iteration):\n");
      for (const auto& p : phases) std::printf("    %-12s %9.3f\n", p.first.c_str(), p.second);
#if GANCU_CUDA_EMULATION
      if (ex.on_cuda()) {
        std::printf("  per iteration, as a GPU would see it (SIMT emulator; times above are the CPU's):\n");
        for (int k = 0; k < counts_known; ++k)
          std::printf("    %-20s %12.1f\n", count_names[k], per_iter[count_names[k]].get<double>());
        if (!bytes_counted)
          std::printf(
              "    kernel bytes: not counted (configure a clang build with -DGANCU_SIMT_COUNT_BYTES=ON)\n");
        else
          std::printf("  the kernels that move the most device memory (per iteration):\n%s",
                      traffic_table(gancu_simt_kernel_traffic(8), cfg.steps).c_str());
      }
#endif
    }
  });
}

}  // namespace gancu::cli
