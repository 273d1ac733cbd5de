#include "gancu/trainer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/comm.h"
#include "gancu/d_pretrain.h"
#include "gancu/data.h"
#include "gancu/evaluation.h"
#include "gancu/fileutil.h"
#include "gancu/graph.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"
#include "gancu/metrics_file.h"
#include "gancu/mixture.h"
#include "gancu/ops.h"
#include "gancu/resume_policy.h"
#include "gancu/run_lock.h"
#include "gancu/session.h"
#include "gancu/stop_signal.h"
#include "gancu/supervised.h"
#include "gancu/tensorboard.h"
#include "gancu/video.h"

namespace gancu {

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

// 4 significant digits, compact ("0.0123", "12.35", "1.2e-05").
std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string samples_path(const std::string& dir, int64_t step) {
  char name[48];
  std::snprintf(name, sizeof name, "/samples/step_%06lld.png", (long long)step);
  return dir + name;
}

void prune_checkpoints(const std::string& dir, int64_t newest) {
  // Keeps the newest three checkpoints: enough to fall back past a bad one, bounded on disk for
  // long runs. By the files there, not by the checkpoint grid: a run's last step and a stop by a
  // signal save off the grid, and a resumed run must not leave those behind for good.
  std::vector<int64_t> upto_newest;
  for (const int64_t s : checkpoint_steps(dir))
    if (s <= newest) upto_newest.push_back(s);
  for (size_t i = 0; i + 3 < upto_newest.size(); ++i)
    std::remove(checkpoint_path(dir, upto_newest[i]).c_str());
}

std::string last_good_checkpoint(const std::string& dir) {
  const std::string kept = latest_checkpoint(dir);
  return kept.empty() ? std::string("none (no checkpoint was written yet)") : kept;
}

[[noreturn]] void stop_diverged(const std::string& dir, int64_t step, const std::string& why) {
  runtime_error("training diverged at step ", step, " (", why, "); stopped. The last good checkpoint is ",
                last_good_checkpoint(dir));
}

// A write into the run folder failed (a full disk, a quota, a folder removed under the run): the
// file's own message, then where the run stands.
[[noreturn]] void stop_write_failed(const std::string& dir, int64_t step, const std::string& why) {
  runtime_error(why, "\ntraining stopped at step ", step, ". The last good checkpoint is ",
                last_good_checkpoint(dir),
                "; once the folder is writable, continue with: gancu train --resume --out ", dir);
}

}  // namespace

void write_sample_grid(const Exec& ex, Gan& gan, int n, const std::string& path, const Mixture2D* mixture) {
  const Config& cfg = gan.config();
  const Shape im = gan.image();
  const bool points = im.per_sample() == 2;  // a generator of 2-d points: a scatter plot
  if (points) n = std::max(n, 1000);
  // A conditional model's grid has one row per class: n rounded up to whole rows.
  const int classes = gan.classes();
  const int class_cols = classes > 0 ? std::max(1, (n + classes - 1) / classes) : 0;
  std::vector<int32_t> by_row;
  if (classes > 0) {
    by_row = classes_by_row(classes, class_cols);
    n = int(by_row.size());
  }
  Buffer<float> z(ex, size_t(n) * cfg.z_dim);
  Buffer<float> images(ex, size_t(n) * im.per_sample());
  gan.fixed_noise(ex, n, cfg.seed, 0, z.data());
  gan.generate(ex, z.data(), n, images.data(), classes > 0 ? by_row.data() : nullptr);
  HostBuffer<float> host(ex.backend(), images.size());
  copy_to_host(ex, host.data(), images.data(), images.size() * sizeof(float));
  if (points) {
    std::vector<float> centres;
    float extent = 1.0f;
    for (int m = 0; mixture && m < mixture->modes; ++m) {
      float cx, cy;
      mixture_center(*mixture, m, &cx, &cy);
      centres.insert(centres.end(), {cx, cy});
      extent = std::max({extent, std::fabs(cx) * 1.25f, std::fabs(cy) * 1.25f});
    }
    const int size = 256;
    write_png(path,
              render_scatter(host.data(), n, centres.data(), int(centres.size() / 2), extent, size).data(),
              size, size, 1);
    return;
  }
  std::vector<uint8_t> pixels(host.size());
  float_to_u8(host.data(), host.size(), pixels.data());
  const int cols = classes > 0 ? class_cols : int(std::ceil(std::sqrt(double(n))));
  const GridShape shape = grid_shape(n, im.h, im.w, cols);
  write_png(path, make_grid(pixels.data(), n, im.h, im.w, im.c, cols).data(), shape.h, shape.w, im.c);
}

TrainResult train(const Config& cfg, Exec& ex, const TrainRun& run) {
  // A data-parallel run (mpirun, srun): every rank trains its shard of the global batch; rank 0
  // alone writes the run folder and the progress lines (docs/data_parallel.md).
  Communicator& comm = world();
  const bool leader = comm.rank() == 0;
  const Shard shard = shard_of(cfg.batch);
  std::ostringstream quiet;
  std::ostream& log = leader ? *run.log : quiet;
  const std::string& dir = run.out_dir;
  // First of all: one writer per run folder (it also clears what a killed writer left half-done).
  std::unique_ptr<RunLock> lock;
  if (leader) lock = std::make_unique<RunLock>(dir);
  // A resumed run continues the checkpoint's training: refuse changed keys before any work.
  const std::string ckpt = run.resume ? latest_checkpoint(dir) : std::string();
  if (run.resume) {
    if (ckpt.empty()) runtime_error("--resume: ", dir, " has no checkpoints to resume from");
    check_resume_config(checkpoint_config(ckpt), cfg, ckpt);
  } else if (!latest_checkpoint(dir).empty()) {
    usage_error("--out: ", dir, " already holds a run; use --resume to continue it or choose another folder");
  }

  // The data live on the backend for the whole run; each step gathers (or samples) its batch there.
  const ImageFolderOptions folder = folder_options(cfg);
  const RealData data(ex, cfg.data, shard, cfg.seed, &folder);
  log << "gancu: data " << data.describe() << "\n";
  if (comm.size() > 1)
    log << "gancu: data-parallel over " << comm.describe() << ": " << shard.batch
        << " of the global batch of " << shard.global_batch << " per rank; batch norm "
        << (cfg.sync_bn ? "synchronized over the ranks" : "per rank (model.sync_bn = false)") << "\n";
  const Gan::RealSource& real = data.source();
  if (cfg.classes > 0) {
    if (data.mixture())
      usage_error("model.classes = ", cfg.classes, ": a conditional model needs class labels, but ", cfg.data,
                  " is a 2-d mixture without them");
    check_conditional_data(cfg, data.images());
  }
  // The supervised generator's grids sweep the mean pixel values the data holds.
  std::unique_ptr<SupervisedGrid> sweep;
  if (cfg.supervised()) {
    const int columns = std::max(2, cfg.grid / cfg.classes);
    sweep = std::make_unique<SupervisedGrid>(
        sweep_grid(cfg.classes, sweep_levels(pixel_levels(data.images(), cfg.classes), columns)));
  }
  if (cfg.d_pretrain_steps > 0 && data.images().images.empty())
    usage_error("train.d_pretrain_steps: D pre-training needs image data; ", data.describe(),
                " has no pixels");

  GanSession session = make_session(cfg, data.image().with_batch(shard.batch), shard, ex);
  comm.prepare(ex);  // NCCL's communicator, before a CUDA graph is captured
  Gan& gan = *session.gan;
  log << gan.generator().summary() << (gan.has_discriminator() ? gan.discriminator().summary() : "")
      << "arena (" << backend_name(ex.backend()) << "):\n"
      << session.arena.plan().summary();

  // Evaluation during training: the judge is built (and the real reference featurized) once.
  std::unique_ptr<Evaluator> evaluator;
  if (cfg.eval_every > 0 && leader)
    evaluator = evaluator_for(ex, cfg.data, data.image(), cfg.eval_classifier);

  if (leader) {
    make_dirs(dir + "/samples");
    make_dirs(dir + "/checkpoints");
  }
  int64_t start = 0;
  if (run.resume) {
    gan.initialize(ex);
    load_checkpoint(ex, gan, ckpt);
    start = gan.read_step(ex);
    if (leader) truncate_metrics(dir + "/metrics.jsonl", start);
    log << "gancu: resuming " << dir << " from step " << start << " (" << ckpt << ")\n";
  } else {
    gan.initialize(ex);
    if (leader) std::remove((dir + "/metrics.jsonl").c_str());
    if (cfg.d_pretrain_steps > 0) {
      // Part of the run's state from here on: a resumed run has it in its checkpoint.
      log << "gancu: pre-training D alone for " << cfg.d_pretrain_steps << " steps against "
          << cfg.d_pretrain_fakes << " fakes\n";
      const GanMetrics m = pretrain_discriminator(ex, gan, data.images(), real);
      log << "gancu: D pre-trained: loss D " << m.loss_d << " | D(x) " << m.d_real << " D(fake) " << m.d_fake
          << " (means over the pre-training steps)\n";
    }
  }
  // TensorBoard: a new event file per session of the run; on resume, the events after the
  // checkpoint in earlier files are marked stale so that TensorBoard shows one history.
  std::unique_ptr<EventWriter> tb;
  std::unique_ptr<MetricsFile> metrics_file;
  if (leader) {
    atomic_write(dir + "/config.toml", cfg.toml);
    tb = std::make_unique<EventWriter>(dir);
    if (run.resume) tb->mark_resume(start);
    metrics_file = std::make_unique<MetricsFile>(dir + "/metrics.jsonl");
  }

  TrainResult result;
  // From here on Ctrl-C and SIGTERM end the run at the end of a step, with a checkpoint.
  const StopOnSignal stop_on_signal;
  StepGraphs graphs(ex, cfg.cuda_graph);
  const auto run_start = Clock::now();
  auto window_start = run_start;
  int64_t window_first = start;
  for (int64_t step = start; step < cfg.steps; ++step) {
    const uint32_t variant = gan.penalty_steps(step);
    graphs.run(variant, [&] { gan.train_step(ex, real, nullptr, variant); });
    const int64_t done = step + 1;
    // A signal may reach some ranks only (or at different steps): they stop together.
    const int stop = comm.all_reduce_max_host(stop_signal(), "the stop request");
    // A stop asked for by a signal is a last step too, without the evaluation (it can take a
    // while, and the user is waiting).
    const bool last = done == cfg.steps || stop != 0;
    const bool checkpoint_now = last || (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0);
    const bool sample_now = last || (cfg.sample_every > 0 && done % cfg.sample_every == 0);
    const bool eval_now = evaluator && stop == 0 && (last || done % cfg.eval_every == 0);  // rank 0 only
    if (!(last || checkpoint_now || sample_now || eval_now || done % cfg.log_every == 0)) continue;

    // A log point: read the sums (this waits for the device), check for divergence, report.
    const GanMetrics m = gan.read_metrics(ex);
    const auto now = Clock::now();
    const double window = std::chrono::duration<double>(now - window_start).count();
    const double steps_per_s = double(done - window_first) / std::max(window, 1e-9);
    window_first = done;
    if (!m.finite())
      stop_diverged(dir, done,
                    detail::concat("loss D ", m.loss_d, ", loss G ", m.loss_g,
                                   m.has_penalty ? detail::concat(", penalty ", m.penalty) : std::string()));
    const double elapsed = std::chrono::duration<double>(now - run_start).count();
    nlohmann::json line = {{"step", done},
                           {"loss_d", m.loss_d},
                           {"loss_g", m.loss_g},
                           {"d_real", m.d_real},
                           {"d_fake", m.d_fake},
                           {"steps_per_s", steps_per_s},
                           {"images_per_s", steps_per_s * cfg.batch},
                           {"time_s", elapsed}};
    if (sweep) line["mse"] = m.loss_g;  // the supervised generator's loss (also loss_g)
    // What the objective adds: the penalty and the gradient norm it holds near 1 (or 0); BEGAN's
    // equilibrium variable and convergence measure.
    std::string objective_text;
    if (m.has_penalty) {
      line["penalty"] = m.penalty;
      line["grad_norm"] = m.grad_norm;
      objective_text +=
          detail::concat(" | GP ", format_number(m.penalty), " |grad| ", format_number(m.grad_norm));
    }
    if (m.is_began) {
      line["k"] = m.k;
      line["convergence"] = m.convergence;
      objective_text += detail::concat(" | k ", format_number(m.k), " M ", format_number(m.convergence));
    }
    std::string eval_text;
    if (eval_now) {
      const std::vector<int32_t> requested = classes_in_turn(cfg.eval_samples, gan.classes());
      const std::vector<float> samples = draw_samples(ex, gan, cfg.eval_samples, cfg.seed, 2, requested);
      const EvalResult r = evaluator->evaluate_generated(samples.data(), cfg.eval_samples,
                                                         requested.empty() ? nullptr : requested.data());
      const nlohmann::json scores = r.json();  // kept alive: items() only refers to it
      line.update(scores);
      for (const auto& [key, value] : scores.items()) tb->add_scalar(key, done, value.get<double>());
      char buf[160];
      if (r.mixture)
        std::snprintf(buf, sizeof buf, " | modes %d/%zu, %.0f%% high quality", r.mix.modes_covered,
                      r.mix.per_mode.size(), 100.0 * r.mix.high_quality);
      else
        std::snprintf(buf, sizeof buf, " | modes %d/%d, FID(clf) %.2f, P/R %.2f/%.2f",
                      r.classes.modes_covered, r.classes_total, r.fid, r.prdc.precision, r.prdc.recall);
      eval_text = buf;
      if (r.conditional) eval_text += detail::concat(", class acc ", format_number(r.class_accuracy));
    }
    // D's outputs: probabilities (BCE), a critic's scores, or BEGAN's reconstruction losses.
    const char* outputs = m.output_kind == "prob"    ? "D(x) %.3f D(G(z)) %.3f"
                          : m.output_kind == "score" ? "critic x %.3f G(z) %.3f"
                                                     : "L(x) %.4f L(G(z)) %.4f";
    char output_text[96];
    std::snprintf(output_text, sizeof output_text, outputs, m.d_real, m.d_fake);
    char progress[640];
    const std::string left = format_duration(double(cfg.steps - done) / std::max(steps_per_s, 1e-9));
    if (sweep)  // the supervised generator: G's MSE alone
      std::snprintf(progress, sizeof progress,
                    "step %lld/%lld | %.2f steps/s | %.0f img/s | MSE %.5f | left %s\n", (long long)done,
                    (long long)cfg.steps, steps_per_s, steps_per_s * cfg.batch, m.loss_g, left.c_str());
    else
      std::snprintf(progress, sizeof progress,
                    "step %lld/%lld | %.2f steps/s | %.0f img/s | loss D %.4f G %.4f | %s%s | left %s%s\n",
                    (long long)done, (long long)cfg.steps, steps_per_s, steps_per_s * cfg.batch, m.loss_d,
                    m.loss_g, output_text, objective_text.c_str(), left.c_str(), eval_text.c_str());
    log << progress << std::flush;
    // Batch-norm running statistics drift apart over the ranks: a checkpoint holds their mean.
    if (checkpoint_now) gan.average_states_over_ranks(ex);
    // The log point's files. Any of them can meet a full disk; each write is whole or absent.
    // Rank 0 alone writes them.
    if (leader) try {
        metrics_file->append(line.dump() + "\n");
        if (sweep) {  // the supervised generator has no D
          tb->add_scalar("loss/mse", done, m.loss_g);
        } else {
          tb->add_scalar("loss/d", done, m.loss_d);
          tb->add_scalar("loss/g", done, m.loss_g);
          tb->add_scalar("d/real", done, m.d_real);
          tb->add_scalar("d/fake", done, m.d_fake);
        }
        if (m.has_penalty) {
          tb->add_scalar("penalty/value", done, m.penalty);
          tb->add_scalar("penalty/grad_norm", done, m.grad_norm);
        }
        if (m.is_began) {
          tb->add_scalar("began/k", done, m.k);
          tb->add_scalar("began/convergence", done, m.convergence);
        }
        tb->add_scalar("perf/images_per_s", done, steps_per_s * cfg.batch);

        if (sample_now) {
          result.last_samples = samples_path(dir, done);
          if (sweep)
            write_supervised_grid(ex, gan, *sweep, result.last_samples);
          else
            write_sample_grid(ex, gan, cfg.grid, result.last_samples, data.mixture());
          tb->add_png_file("samples", done, result.last_samples);
        }
        if (checkpoint_now) {
          result.last_checkpoint = checkpoint_path(dir, done);
          save_checkpoint(ex, gan, result.last_checkpoint);
          prune_checkpoints(dir, done);
        }
      } catch (const DivergedError& e) {
        stop_diverged(dir, done, e.what());
      } catch (const RuntimeError& e) {
        stop_write_failed(dir, done, e.what());
      }
    if (stop != 0) {
      result.stopped_by = stop;
      result.steps = done;
      log << "gancu: stopped by " << signal_name(stop) << " at step " << done << " (checkpoint "
          << result.last_checkpoint << "); continue with: gancu train --resume --out " << dir << "\n";
      return result;
    }
    // The next window starts after this log point's own work (evaluation, grids, checkpoints), so
    // that steps/s measures training alone.
    window_start = Clock::now();
  }
  result.steps = cfg.steps;
  // The fixed-noise grids over the run as a video (MP4 through ffmpeg, else a GIF). A finished
  // run is not failed for want of a video.
  if (start < cfg.steps && leader) {
    try {
      result.video = write_run_video(dir);
      log << "gancu: video of the samples: " << result.video << "\n";
    } catch (const RuntimeError& e) {
      log << "gancu: warning: no video of the samples: " << e.what() << "\n";
    }
  }
  if (start >= cfg.steps) log << "gancu: nothing to do: the run is already at step " << start << "\n";
  return result;
}

}  // namespace gancu
