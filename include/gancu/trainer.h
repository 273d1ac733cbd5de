// Training a GAN into a run folder:
//   config.toml            the resolved config (a valid --config file)
//   metrics.jsonl          one JSON object per log step
//   samples/step_N.png     the fixed-noise grid every sample_every steps and at the end
//   checkpoints/step_N.safetensors   every checkpoint_every steps and at the end (atomic)
//   events.out.tfevents.*  TensorBoard: the scalars of metrics.jsonl and the sample grids
//   samples.mp4 (or .gif)  the fixed-noise grids over the run, at the end
//   gancu.lock             held (flock) while a trainer writes the folder: one writer at a time
// with a progress line per log step. --resume continues from the newest checkpoint and gives
// the same parameters as an uninterrupted run with the same config. SIGINT and SIGTERM end the
// run at the end of the current step with a checkpoint and a grid (stop_signal.h); a write that
// fails (a full disk) ends it with a RuntimeError naming the file and the last good checkpoint.
#pragma once

#include <ostream>
#include <string>

#include "gancu/config.h"
#include "gancu/exec.h"

namespace gancu {

struct TrainRun {
  std::string out_dir;  // the run folder
  bool resume = false;  // continue from out_dir's newest checkpoint
  std::ostream* log;    // progress and notes
};

struct TrainResult {
  int64_t steps = 0;
  std::string last_checkpoint;
  std::string last_samples;
  std::string video;
  int stopped_by = 0;  // SIGINT or SIGTERM when a signal stopped the run early (steps: where)
};

TrainResult train(const Config& cfg, Exec& ex, const TrainRun& run);

// The fixed-noise grid of a Gan as a PNG; for a generator of 2-d points, a scatter plot of 1,000
// of them over the mixture's centres (when given).
class Gan;
struct Mixture2D;
void write_sample_grid(const Exec& ex, Gan& gan, int n, const std::string& path,
                       const Mixture2D* mixture = nullptr);

}  // namespace gancu
