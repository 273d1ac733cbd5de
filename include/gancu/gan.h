// A GAN: generator and discriminator, their optimizers, the buffers of one training iteration,
// and the iteration itself (all D steps and the G step), written once for both backends.
//
// Everything an iteration touches is planned into one arena. Everything that changes from one
// iteration to the next (the step counters, hence the noise and the data order; the optimizers'
// step counts; the loss sums) lives in that arena too, so the iteration has no host inputs and
// can be captured as a CUDA graph and replayed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gancu/arena.h"
#include "gancu/comm.h"
#include "gancu/config.h"
#include "gancu/memory.h"
#include "gancu/network.h"
#include "gancu/objective.h"
#include "gancu/optim.h"

namespace gancu {

// Loss and D-output averages over the iterations since the last read. What d_real / d_fake mean
// depends on the objective (Objective::output_kind): D's mean probability for the BCE
// objectives, the critic's mean score for the others, the reconstruction loss L for BEGAN.
struct GanMetrics {
  int64_t iterations = 0;
  double loss_d = 0, loss_g = 0;  // D's adversarial loss per D step (without the penalty); G's per G step
  double d_real = 0, d_fake = 0;  // during the D steps
  bool has_penalty = false;       // penalty and grad_norm: per penalized D step
  double penalty = 0, grad_norm = 0;
  bool is_began = false;  // k (at the read) and the convergence measure M (mean per D step)
  double k = 0, convergence = 0;
  std::string output_kind = "prob";
  bool finite() const;
};

// Called at each phase boundary of an instrumented iteration (gancu bench); null in training.
using PhaseHook = std::function<void(const char* phase_that_ended)>;

// The external inputs of a network of this config with main input `main`: the main one, and for
// a conditional model (cfg.classes > 0) "label", one-hot rows [main.n, classes].
std::vector<NetworkInput> network_inputs(const Config& cfg, Shape main);

class Gan {
 public:
  // Fills `real` ([batch, image]) with the real batch of data step *data_step, and `classes`
  // ([batch] int32, backend memory) with its class labels when not null (conditional models).
  using RealSource =
      std::function<void(const Exec& ex, float* real, int32_t* classes, const int64_t* data_step)>;

  Gan(const Config& cfg, Shape image, int batch);
  // One rank of a data-parallel run (comm.h): the buffers hold the rank's shard of the global
  // batch; the latent noise is drawn for the global batch and the rank reads its rows, so that the
  // ranks together see what one process sees at the global batch. Each optimizer step averages
  // the gradients over the ranks first (world().all_reduce_mean).
  Gan(const Config& cfg, Shape image, Shard shard);
  ~Gan();

  // Keep the penalty's random draws of the last D step readable (tests that replay a step in
  // PyTorch). Before plan().
  void record_penalty_draws() { record_draws_ = true; }
  // `sample_only`: the GAN only generates (gancu sample, eval, compare), so no backward pass of
  // either network is planned (on CUDA: no cuDNN algorithm is looked for that nothing calls).
  void plan(ArenaPlan& plan, const Exec& ex, bool sample_only = false);
  void bind(const Arena& arena);
  // Initial parameters, zeroed optimizer state, counters and metric sums.
  void initialize(const Exec& ex);

  // One training iteration on the device: cfg.d_steps discriminator steps, then one generator
  // step, then the step counter advances. `penalty_steps` is penalty_steps(step) for the
  // iteration's step: which of its D steps run a lazy penalty (R1 with r1_interval > 1). It is
  // the one thing that differs between iterations on the host side, so a trainer captures one
  // CUDA graph per value; kEveryDStep where the objective has no lazy penalty.
  static constexpr uint32_t kEveryDStep = ~0u;
  // A supervised generator (cfg.supervised()) runs one G step instead (supervised_step).
  void train_step(const Exec& ex, const RealSource& real, const PhaseHook& hook = nullptr,
                  uint32_t penalty_steps = kEveryDStep);
  uint32_t penalty_steps(int64_t step) const;

  // D pre-training (train.d_pretrain_steps; src/train/d_pretrain.cpp): one step of D alone on the
  // real batch of the next data step and a fake batch that `make_fake` writes to `fake` ([batch,
  // image], backend memory) from that real batch; the objective's D losses and penalty (every
  // step, lazy or not), then D's optimizer. G does not run; the data step advances, the step
  // counter does not.
  using FakeSource = std::function<void(const Exec& ex, const float* real, float* fake)>;
  void pretrain_d_step(const Exec& ex, const RealSource& real, const FakeSource& make_fake, float* fake);

  // Reads the metric sums and resets them (synchronizes with the device).
  GanMetrics read_metrics(const Exec& ex);
  // The same after `d_steps` pre-training steps of D (the step counter has not moved): D's loss,
  // outputs and penalty per D step; G's loss is 0.
  GanMetrics read_pretrain_metrics(const Exec& ex, int64_t d_steps);
  // Makes the running statistics (batch norm) the mean over the ranks, before a checkpoint: with
  // per-rank batch statistics they drift apart. A no-op in one process.
  void average_states_over_ranks(const Exec& ex);
  // Zeroes the sums and counts from the current step (after a checkpoint is restored).
  void restart_metrics(const Exec& ex);

  // Generates n images from the latent vectors z ([n, z_dim], backend memory) into out ([n,
  // image], backend memory), in chunks of at most the planned batch. Batch norm runs with the
  // chunk's statistics (sample_bn = "batch", as the PyTorch DCGAN reference does) or with the
  // running statistics ("running"). A conditional model draws image i of class classes[i] (host
  // memory, [n], each in [0, classes); null: the classes in turn, i % classes).
  void generate(const Exec& ex, const float* z, int64_t n, float* out, const int32_t* classes = nullptr);
  // The same with any label rows of a conditional model (host memory, [n, classes]), such as a
  // mix of two classes (the supervised generator's grids).
  void generate_with_labels(const Exec& ex, const float* z, int64_t n, const float* labels, float* out);
  // The number of classes of a conditional model (0: unconditional).
  int classes() const { return cfg_.classes; }
  // Latent vectors of a fixed set: element i of stream (seed, kStreamFixedNoise, set_id).
  void fixed_noise(const Exec& ex, int64_t n, uint64_t seed, uint64_t set_id, float* z) const;

  Network<float>& generator() { return *g_; }
  // False for the supervised generator, which has no D, D optimizer or objective.
  bool has_discriminator() const { return d_ != nullptr; }
  Network<float>& discriminator() { return *d_; }
  Optimizer<float>& optim_g() { return *opt_g_; }
  Optimizer<float>& optim_d() { return *opt_d_; }
  Objective& objective() { return *objective_; }
  const Config& config() const { return cfg_; }
  Shape image() const { return image_; }
  int batch() const { return batch_; }  // this rank's rows (the global batch in one process)
  const Shard& shard() const { return shard_; }

  // Device counters: iterations done, and real batches consumed (d_steps per iteration).
  int64_t* step_counter() const { return counters_; }
  int64_t* data_step_counter() const { return counters_ + 1; }
  int64_t read_step(const Exec& ex) const;

  float* real_buffer() const { return real_; }
  // Conditional models: the real batch's classes ([batch] int32) and the one-hot labels D and G
  // read ([batch, classes]; G's are those of the fake batch). Null for unconditional models.
  int32_t* real_classes() const { return real_classes_; }
  float* real_labels() const { return real_label_; }
  float* fake_labels() const { return fake_label_; }
  // Feature matching: the id of D's matched value (-1: off) and the real batch's mean of it.
  int feature_matching_value() const { return fm_value_; }
  float* feature_matching_real_mean() const { return fm_real_mean_; }
  float* noise_buffer() const { return z_; }

 private:
  // generate()'s loop over chunks of the planned batch; set_labels(begin, chunk) writes the chunk's
  // label rows to fake_label_ (conditional models).
  void generate_chunks(const Exec& ex, const float* z, int64_t n, float* out,
                       const std::function<void(int64_t begin, int chunk)>& set_labels);
  // The supervised generator's iteration: the next real batch, G from (one-hot label, mean pixel
  // value) of each image, the MSE to the images (ops::mse_loss), G's optimizer step.
  void supervised_step(const Exec& ex, const RealSource& real, const PhaseHook& hook);
  // The end of every G step, its loss's gradient seeded at G's outputs: G's backward, the data
  // step advances, the gradients averaged over the ranks, G's optimizer step, the step advances.
  void finish_g_step(const Exec& ex, const PhaseHook& hook);
  void d_real_pass(const Exec& ex, bool penalized);
  void d_fake_pass(const Exec& ex, const float* fake, bool penalized);
  // The mean of a network's gradients over the ranks (before its optimizer step).
  void average_gradients(const Exec& ex, Network<float>& net, const char* what);
  // Conditional models: the real batch's one-hot labels from its classes, and D reading them; the
  // fake batch's classes drawn for the global batch (like the noise) and this rank's rows as G's
  // and D's labels. No-ops for unconditional models.
  void use_real_labels(const Exec& ex);
  void draw_fake_labels(const Exec& ex);
  void d_reads(const float* labels);
  // This rank's rows of the latent batch.
  float* local_noise() const { return z_ + int64_t(shard_.first) * cfg_.z_dim; }
  // The metric sums on the host (in metrics_host_), zeroed on the device (synchronizes).
  const float* take_metric_sums(const Exec& ex);

  Config cfg_;
  Shape image_;
  int batch_;
  Shard shard_;
  uint64_t draw_seed_;  // dropout and penalty draws: rank_seed(cfg.seed, rank)
  std::unique_ptr<Network<float>> g_, d_;
  std::unique_ptr<Optimizer<float>> opt_g_, opt_d_;
  std::unique_ptr<Objective> objective_;
  bool record_draws_ = false;
  Slot real_slot_, z_slot_, counters_slot_, metrics_slot_;
  float* real_ = nullptr;
  float* z_ = nullptr;
  int64_t* counters_ = nullptr;
  float* metrics_ = nullptr;
  std::unique_ptr<HostBuffer<float>> metrics_host_;  // page-locked: read every log_every steps
  int64_t metrics_base_step_ = 0;
  int fm_value_ = -1;
  std::vector<int> fm_seeds_;  // {fm_value_}: the seeds of D's backward in the G step
  int64_t fm_features_ = 0;    // per sample
  Slot fm_slot_;
  float* fm_real_mean_ = nullptr;  // [fm_features_]
  int dh_value_ = -1;
  std::vector<int> g_seeds_;  // the seeds of G's backward: its output, and the distance head if on
  Slot dh_slot_;
  float* dh_pair_sq_ = nullptr;  // [batch, batch]: pairwise squared distances (mean_distance label)
  // Conditional models: the label inputs' ids, and the class buffers (see real_classes()).
  int g_label_ = -1, d_label_ = -1;
  Slot classes_slot_, labels_slot_;
  int32_t* real_classes_ = nullptr;
  int32_t* fake_classes_ = nullptr;    // [global batch]
  int32_t* sample_classes_ = nullptr;  // [batch]: generate()'s classes of one chunk
  float* real_label_ = nullptr;
  float* fake_label_ = nullptr;
};

}  // namespace gancu
