// The configuration of a run: built-in defaults, then a preset (configs/presets/NAME.toml, compiled
// in), then the user's --config file, then command-line flags and --set key=value overrides, in
// that order. Every key is known in advance (the defaults name them all), so a misspelled key is
// an error, not a silently ignored setting. The resolved config is written into the run folder
// and is itself a valid --config file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gancu/layers.h"
#include "gancu/op_types.h"
#include "gancu/optim.h"

namespace gancu {

struct Config {
  std::string preset;
  std::string description;

  // [data]
  std::string data;          // a known name (fashion-mnist, mnist, cifar10, synthetic:HxWxC) or a path
  bool data_strict = false;  // an image folder's unreadable files: an error instead of skipped

  // [model]
  int z_dim = 100;
  NoiseKind latent = NoiseKind::Normal;
  InitScheme init = InitScheme::DCGAN;
  std::vector<std::string> generator, discriminator;
  // A conditional model (docs/conditional.md): the number of classes (0: unconditional). G and D
  // then read the external input "label", one-hot rows [batch, classes].
  int classes = 0;
  bool sync_bn = false;  // data-parallel: batch-norm statistics over all ranks (docs/data_parallel.md)

  // [train]
  // "gan": adversarial training of G and D. "supervised": G alone, trained with the mean squared
  // error to the real image from its one-hot label and its mean pixel value (z_dim = 1, no D;
  // docs/conditional.md#the-supervised-generator).
  std::string mode = "gan";
  bool supervised() const { return mode == "supervised"; }
  std::string loss = "bce";  // objective.h lists the objectives
  int batch = 64;
  int64_t steps = 1000;
  int d_steps = 1;
  float label_smoothing = 0.0f;
  // Feature matching (Salimans et al. 2016): the named value of D whose mean over the batch G
  // matches to the real batch's, instead of G's adversarial loss ("" = off).
  std::string feature_matching;
  // The distance head (the Minibatch-GAN experiment): the named [batch, 1] value of G that
  // predicts a label of each generated image ("" = off); the label ("norm": the image's norm,
  // "mean_distance": its mean distance to the other images of the batch); the weight of
  // weight / mse in G's loss (ops.h, distance_head_loss).
  std::string distance_head;
  std::string distance_label = "norm";
  float distance_weight = 1.0f;
  // D pre-training: D alone for this many steps before the first step of a new run, against
  // fakes with the data's pixel statistics ("histogram": pixels drawn from the data's pixel
  // histogram; "scrambled": real images with their pixel positions permuted).
  int64_t d_pretrain_steps = 0;
  std::string d_pretrain_fakes = "histogram";
  uint64_t seed = 1;
  float gp_weight = 10.0f;     // wgan-gp, dragan: lambda
  float clip = 0.01f;          // wgan: the critic's weights are clipped to [-clip, clip]
  float r1_gamma = 10.0f;      // r1: gamma / 2 ||grad D(x)||^2
  int r1_interval = 1;         // r1: lazy regularization, every r1_interval-th D step (weighted by it)
  float dragan_spread = 0.5f;  // dragan: the noise's scale, in standard deviations of the real batch
  float began_gamma = 0.5f;    // began: the diversity ratio
  float began_lambda_k = 0.001f;
  float began_k0 = 0.0f;

  // [optim.g], [optim.d]
  OptimConfig optim_g, optim_d;

  // [log]
  int64_t log_every = 50, sample_every = 250, checkpoint_every = 500;
  int grid = 64;
  int64_t eval_every = 0;  // evaluate every N steps (0: never); needs a classifier for image data

  // [eval]
  int64_t eval_samples = 2000;
  std::string eval_classifier;  // "" : the shipped classifier of the data set

  // [run]
  std::string backend = "auto";  // auto | cpu | cuda
  int threads = 0;               // 0: all cores
  std::string math = "fp32";     // fp32 | tf32
  bool deterministic = true;     // only deterministic cuDNN algorithms
  bool cuda_graph = true;
  std::string sample_bn = "batch";  // batch | running: how G's batch norm runs when sampling
  double collective_timeout_s =
      600;  // a data-parallel rank waits this long for the others, then ends the job

  std::string toml;  // the resolved config as TOML text
};

// One override, from a flag or --set. `source` names it in messages ("--batch", "--set train.lr").
struct ConfigOverride {
  std::string key;    // dotted: "train.batch"
  std::string value;  // TOML literal, or a bare string
  std::string source;
};

std::vector<std::string> preset_names();
const std::string& preset_text(const std::string& name);  // UsageError for an unknown preset

// Builds the config. preset may be empty when config_file names everything. Errors name the
// key and where it came from; impossible values are UsageErrors.
Config load_config(const std::string& preset, const std::string& config_file,
                   const std::vector<ConfigOverride>& overrides);

// The same from TOML text (a run's config.toml, a checkpoint's metadata); `source` names it in
// messages. Overrides apply on top (--resume --steps N).
Config load_config_text(const std::string& toml_text, const std::string& source,
                        const std::vector<ConfigOverride>& overrides = {});

// One key whose value differs between two resolved configs (values written as TOML).
struct ConfigChange {
  std::string key;  // dotted: "model.z_dim"
  std::string before, after;
};
// Every key that differs, in key order.
std::vector<ConfigChange> config_changes(const Config& before, const Config& after);

}  // namespace gancu
