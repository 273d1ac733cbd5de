// What train, sample and bench share: choosing the backend, and a Gan planned into its arena on
// that backend.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "gancu/arena.h"
#include "gancu/config.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/gan.h"
#include "gancu/image_folder.h"
#include "gancu/memory.h"

namespace gancu {

// "auto" picks CUDA where a usable GPU is present and the CPU otherwise; either way one line on
// `log` says which and why. "cuda" without a GPU is a RuntimeError.
Exec open_backend(const std::string& requested, int threads, const std::string& math, std::ostream& log);

// A Gan with its arena, bound and ready (parameters not yet initialized). `record_penalty_draws`
// keeps the penalty's draws readable (Gan::record_penalty_draws); `sample_only` plans no backward
// pass (Gan::plan).
struct GanSession {
  std::unique_ptr<Gan> gan;
  Arena arena;
};
GanSession make_session(const Config& cfg, Shape image, int batch, Exec& ex,
                        bool record_penalty_draws = false, bool sample_only = false);
// One rank's part of a data-parallel run (Gan's Shard constructor).
GanSession make_session(const Config& cfg, Shape image, Shard shard, Exec& ex);

// The image shape (batch 0) that the config's generator produces.
Shape generator_image(const Config& cfg);
// How `gancu train` reads an image folder for this config: at its generator's size and channels.
ImageFolderOptions folder_options(const Config& cfg);

// A data set uploaded once to the backend, and the real-batch source of a Gan that gathers each
// step's batch from it (through the epoch's permutation, on the device).
class DeviceDataset {
 public:
  DeviceDataset(const Exec& ex, const Dataset& data, int batch, uint64_t seed)
      : DeviceDataset(ex, data, Shard{0, batch, batch}, seed) {}
  // Gathers the rows of `shard` of each global batch.
  DeviceDataset(const Exec& ex, const Dataset& data, Shard shard, uint64_t seed);
  DeviceDataset(const DeviceDataset&) = delete;  // source_ refers to this object
  DeviceDataset& operator=(const DeviceDataset&) = delete;
  const Gan::RealSource& source() const { return source_; }

 private:
  Buffer<uint8_t> images_;
  Buffer<uint8_t> labels_;  // empty when the data set has none
  BatchGather gather_;
  Gan::RealSource source_;
};

// A trained GAN restored from a checkpoint (its config and image shape come from the file), to
// generate from (its session is planned sample-only: no backward pass).
struct TrainedGan {
  Config cfg;
  Shape image;  // batch 0
  std::string checkpoint;
  // The Exec to run this GAN on: a copy of the one it was loaded with (same device, stream and
  // handles) that holds this session's workspace, so that several loaded GANs can share a backend.
  // Declared before the session, so that it outlives the session's arena.
  Exec ex;
  GanSession session;
};
// `run_or_checkpoint`: a run folder (its newest checkpoint) or a checkpoint file. Missing folder,
// no checkpoint, unreadable file: RuntimeError naming it.
TrainedGan load_trained(const Exec& ex, const std::string& run_or_checkpoint);
// n samples [n, image] on the host, floats in [-1, 1], from the latent vectors of fixed-noise set
// `set_id` of `seed` (gancu sample uses set 1; the training grid set 0). A conditional model's
// sample i is of class classes[i] (empty: the classes in turn, i % classes).
std::vector<float> draw_samples(const Exec& ex, Gan& gan, int64_t n, uint64_t seed, uint64_t set_id,
                                const std::vector<int32_t>& classes = {});
// The classes in turn, i % classes, for n samples (empty for an unconditional model, classes 0).
std::vector<int32_t> classes_in_turn(int64_t n, int classes);
// The classes of a grid with one row per class: `cols` images of class 0, then of class 1, ...
std::vector<int32_t> classes_by_row(int classes, int cols);
// A conditional model and the data it trains on: a UsageError (exit 2) when the data set has no
// labels, or labels beyond the model's classes (`what` names the data set).
void check_conditional_data(const Config& cfg, const Dataset& data);

// The 2-d Gaussian mixtures known by name: "ring8" (8 modes on a ring of radius 2, std 0.02, as in
// the unrolled-GAN paper) and "grid25" (a 5x5 grid with spacing 2, std 0.05, as in VEEGAN and
// PacGAN). False for any other name.
bool mixture_by_name(const std::string& name, Mixture2D* out);

// What a GAN trains on: a data set of images (uploaded once, gathered on the device) or a 2-d
// Gaussian mixture (sampled on the device each step). `--data` names either.
class RealData {
 public:
  RealData(const Exec& ex, const std::string& name, int batch, uint64_t seed);
  // A data-parallel rank's source: the rows of `shard` of the batch one process would see. A
  // folder of images is read at `folder`'s size (the model's; null: refused).
  RealData(const Exec& ex, const std::string& name, Shard shard, uint64_t seed,
           const ImageFolderOptions* folder = nullptr);
  RealData(const RealData&) = delete;
  RealData& operator=(const RealData&) = delete;

  Shape image() const { return image_; }  // batch 0; [1, 1, 2] for a mixture
  const Gan::RealSource& source() const { return source_; }
  std::string describe() const;
  const Mixture2D* mixture() const { return is_mixture_ ? &mixture_ : nullptr; }
  const Dataset& images() const { return images_; }  // empty for a mixture

 private:
  Dataset images_;
  std::unique_ptr<DeviceDataset> device_;
  bool is_mixture_ = false;
  Mixture2D mixture_;
  std::unique_ptr<Buffer<float>> mixture_batch_;  // the global batch of points (data-parallel ranks)
  Shape image_;
  Gan::RealSource source_;
};

}  // namespace gancu
