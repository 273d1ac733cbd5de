#include "gancu/gan.h"

#include <cmath>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {

namespace {
// The passes of D over one data step, each with its own dropout masks.
enum DPass : uint32_t {
  kPassReal = 0,
  kPassFake = 1,
  kPassGeneratorStep = 2,
  kPassPenalty = 3,
  kPassFeatureMatchingReal = 4  // D on the real batch in the G step (feature matching)
};
}  // namespace

bool GanMetrics::finite() const {
  return std::isfinite(loss_d) && std::isfinite(loss_g) && std::isfinite(d_real) && std::isfinite(d_fake) &&
         std::isfinite(penalty) && std::isfinite(grad_norm) && std::isfinite(k) && std::isfinite(convergence);
}

std::vector<NetworkInput> network_inputs(const Config& cfg, Shape main) {
  std::vector<NetworkInput> in{{"input", main}};
  if (cfg.classes > 0) in.push_back({"label", Shape::features(main.n, cfg.classes)});
  return in;
}

Gan::Gan(const Config& cfg, Shape image, int batch) : Gan(cfg, image, Shard{0, batch, batch}) {}

Gan::Gan(const Config& cfg, Shape image, Shard shard)
    : cfg_(cfg),
      image_(image.with_batch(shard.batch)),
      batch_(shard.batch),
      shard_(shard),
      draw_seed_(shard.whole() ? cfg.seed : rank_seed(cfg.seed, world().rank())) {
  const int batch = batch_;
  if (!shard.whole() && cfg.loss == "began" && !cfg.supervised())
    usage_error(
        "train.loss = began: BEGAN's equilibrium variable k is updated from each rank's own losses, so "
        "the ranks would drift apart; train it in one process");
  g_ = std::make_unique<Network<float>>("G", 1, cfg.generator, "model.generator",
                                        network_inputs(cfg, Shape::features(batch, cfg.z_dim)), cfg.init);
  if (g_->output_shape() != image_)
    usage_error("model.generator: produces ", g_->output_shape().str(), " images but the data set has ",
                image_.str(), " (check the last layers, or --data)");
  if (cfg.classes > 0) g_label_ = g_->value_id("label");
  g_seeds_ = {g_->output_id()};
  opt_g_ = std::make_unique<Optimizer<float>>("optim.g", cfg.optim_g, g_->param_count());
  if (cfg.sync_bn && !shard.whole()) g_->set_batchnorm_sync(batchnorm_sync_over_world());
  // The supervised generator has no D (config.cpp refuses the keys that would need one).
  if (cfg.supervised()) return;
  d_ = std::make_unique<Network<float>>("D", 2, cfg.discriminator, "model.discriminator",
                                        network_inputs(cfg, image_), cfg.init);
  if (cfg.classes > 0) d_label_ = d_->value_id("label");
  objective_ = Objective::make(cfg, *g_, *d_, image_);
  if (!cfg.feature_matching.empty()) {
    if (cfg.loss == "began")
      usage_error(
          "train.feature_matching: train.loss = began has no adversarial G loss to replace (its D is an "
          "auto-encoder); use feature matching with another objective");
    try {
      fm_value_ = d_->value_id(cfg.feature_matching);
    } catch (const UsageError& e) {
      usage_error("train.feature_matching: ", e.what());
    }
    if (fm_value_ == 0)
      usage_error("train.feature_matching: \"", cfg.feature_matching,
                  "\" is D's input; name a layer of model.discriminator with name=");
    fm_features_ = d_->value_shape(fm_value_).per_sample();
    fm_seeds_ = {fm_value_};  // built once: the loop allocates nothing
  }
  if (!cfg.distance_head.empty()) {
    try {
      dh_value_ = g_->value_id(cfg.distance_head);
    } catch (const UsageError& e) {
      usage_error("train.distance_head: ", e.what());
    }
    if (dh_value_ == 0 || dh_value_ == g_->output_id())
      usage_error("train.distance_head: \"", cfg.distance_head,
                  "\" is G's input or its image; name a branch of model.generator with name=");
    if (g_->value_shape(dh_value_).per_sample() != 1)
      usage_error("train.distance_head: \"", cfg.distance_head, "\" holds ",
                  g_->value_shape(dh_value_).per_sample(),
                  " numbers per image; the head predicts one (end it with "
                  "\"linear out=1\")");
    g_seeds_.push_back(dh_value_);
  }
  if (cfg.sync_bn && !shard.whole()) d_->set_batchnorm_sync(batchnorm_sync_over_world());
  opt_d_ = std::make_unique<Optimizer<float>>("optim.d", cfg.optim_d, d_->param_count());
}

Gan::~Gan() = default;

void Gan::plan(ArenaPlan& plan, const Exec& ex, bool sample_only) {
  // Nothing asks for the gradient of the noise; G's step takes the gradient of D's input.
  g_->plan(plan, ex, BackwardUse{!sample_only, false});
  if (d_) d_->plan(plan, ex, BackwardUse{!sample_only, !sample_only});
  opt_g_->plan(plan);
  if (d_) {
    opt_d_->plan(plan);
    objective_->plan(plan, record_draws_);
  }
  real_slot_ = plan.add_array<float>(ArenaKind::Activations, "real batch", size_t(image_.numel()));
  // The global batch's noise: this rank reads its rows (local_noise()).
  z_slot_ =
      plan.add_array<float>(ArenaKind::Activations, "latent batch", size_t(shard_.global_batch) * cfg_.z_dim);
  counters_slot_ = plan.add_array<int64_t>(ArenaKind::State, "step counters", 3);
  metrics_slot_ = plan.add_array<float>(ArenaKind::State, "metric sums", kMetricSums);
  if (fm_value_ >= 0)
    fm_slot_ =
        plan.add_array<float>(ArenaKind::Activations, "feature matching real mean", size_t(fm_features_));
  if (cfg_.classes > 0) {
    // The real batch's classes, the fake batch's (global), and one chunk of generate()'s.
    classes_slot_ = plan.add_array<int32_t>(ArenaKind::Activations, "class labels",
                                            size_t(2 * batch_ + shard_.global_batch));
    labels_slot_ = plan.add_array<float>(ArenaKind::Activations, "one-hot labels",
                                         size_t(2 * batch_) * size_t(cfg_.classes));
  }
  if (dh_value_ >= 0 && cfg_.distance_label == "mean_distance")
    dh_slot_ = plan.add_array<float>(ArenaKind::Activations, "distance head pairwise distances",
                                     size_t(batch_) * size_t(batch_));
}

void Gan::bind(const Arena& arena) {
  g_->bind(arena);
  if (d_) d_->bind(arena);
  opt_g_->bind(arena);
  if (d_) {
    opt_d_->bind(arena);
    objective_->bind(arena);
  }
  real_ = arena.get<float>(real_slot_);
  z_ = arena.get<float>(z_slot_);
  counters_ = arena.get<int64_t>(counters_slot_);
  metrics_ = arena.get<float>(metrics_slot_);
  if (fm_value_ >= 0) fm_real_mean_ = arena.get<float>(fm_slot_);
  if (dh_value_ >= 0 && cfg_.distance_label == "mean_distance") dh_pair_sq_ = arena.get<float>(dh_slot_);
  metrics_host_ = std::make_unique<HostBuffer<float>>(arena.backend(), kMetricSums);
  if (cfg_.classes > 0) {
    real_classes_ = arena.get<int32_t>(classes_slot_);
    sample_classes_ = real_classes_ + batch_;
    fake_classes_ = real_classes_ + 2 * batch_;
    real_label_ = arena.get<float>(labels_slot_);
    fake_label_ = real_label_ + int64_t(batch_) * cfg_.classes;
    g_->set_input(g_label_, fake_label_);
    d_reads(real_label_);
  }
}

void Gan::use_real_labels(const Exec& ex) {
  if (cfg_.classes == 0) return;
  ops::one_hot<float>(ex, batch_, cfg_.classes, real_classes_, real_label_);
  d_reads(real_label_);
}

void Gan::draw_fake_labels(const Exec& ex) {
  if (cfg_.classes == 0) return;
  // As the noise: drawn for the global batch from the data step, this rank's rows read.
  ops::draw_classes<float>(ex, shard_.global_batch, cfg_.classes, cfg_.seed, kStreamClasses,
                           data_step_counter(), fake_classes_);
  ops::one_hot<float>(ex, batch_, cfg_.classes, fake_classes_ + shard_.first, fake_label_);
  g_->set_input(g_label_, fake_label_);
  d_reads(fake_label_);
}

void Gan::d_reads(const float* labels) {
  if (cfg_.classes > 0 && d_) d_->set_input(d_label_, labels);
}

void Gan::initialize(const Exec& ex) {
  g_->initialize(ex, cfg_.seed);
  if (d_) d_->initialize(ex, cfg_.seed);
  opt_g_->reset(ex);
  if (d_) {
    opt_d_->reset(ex);
    objective_->initialize(ex);
  }
  const int64_t zeros[3] = {0, 0, 0};
  copy_to_device(ex, counters_, zeros, sizeof zeros);
  restart_metrics(ex);
}

void Gan::restart_metrics(const Exec& ex) {
  ops::fill<float>(ex, kMetricSums, metrics_, 0.0f);
  metrics_base_step_ = read_step(ex);
}

uint32_t Gan::penalty_steps(int64_t step) const {
  if (!objective_) return kEveryDStep;
  const int interval = objective_->penalty_interval();
  if (!objective_->penalty() || interval == 1) return kEveryDStep;
  uint32_t mask = 0;
  for (int k = 0; k < cfg_.d_steps; ++k)
    if ((step * cfg_.d_steps + k) % interval == 0) mask |= 1u << k;
  return mask;
}

// D on the real batch in real_: the objective's real loss, its gradient into D's parameters
// (zeroed by the caller), and R1's penalty, which is taken at the real pass.
void Gan::d_real_pass(const Exec& ex, bool penalized) {
  Network<float>& D = *d_;
  GradientPenalty<float>* penalty = objective_->penalty();
  D.forward(ex, real_, batch_, BatchNormMode::Train, data_step_counter(), draw_seed_, kPassReal);
  objective_->d_real(ex, D, real_, metrics_);
  D.backward(ex, nullptr, false, true);
  if (penalized && penalty->at() == GradientPenalty<float>::At::Real)
    penalty->apply(ex, D, real_, nullptr, data_step_counter(), draw_seed_, kPassReal, metrics_ + kSumPenalty,
                   metrics_ + kSumGradNorm);
}

// D on the fake batch `fake`: the objective's fake loss and its gradient (added to the real
// pass's), and the penalties at points of their own (WGAN-GP, DRAGAN).
void Gan::d_fake_pass(const Exec& ex, const float* fake, bool penalized) {
  Network<float>& D = *d_;
  GradientPenalty<float>* penalty = objective_->penalty();
  D.forward(ex, fake, batch_, BatchNormMode::Train, data_step_counter(), draw_seed_, kPassFake);
  objective_->d_fake(ex, D, fake, metrics_);
  D.backward(ex, nullptr, false, true);
  // A conditional critic's penalty points (between a real and a fake image, or around a real
  // one) are judged with the real batch's labels.
  d_reads(real_label_);
  if (penalized && penalty->at() != GradientPenalty<float>::At::Real)
    penalty->apply(ex, D, real_, fake, data_step_counter(), draw_seed_, kPassPenalty, metrics_ + kSumPenalty,
                   metrics_ + kSumGradNorm);
}

void Gan::pretrain_d_step(const Exec& ex, const RealSource& real, const FakeSource& make_fake, float* fake) {
  Network<float>& D = *d_;
  const bool penalized = objective_->penalty() != nullptr;
  ops::fill<float>(ex, D.param_count(), D.grads(), 0.0f);
  real(ex, real_, real_classes_, data_step_counter());
  make_fake(ex, real_, fake);
  use_real_labels(ex);  // the fakes are made from the real images: D judges both with their labels
  d_real_pass(ex, penalized);
  d_fake_pass(ex, fake, penalized);
  average_gradients(ex, D, "D's gradients");
  opt_d_->step(ex, D.params(), D.grads());
  objective_->after_d_step(ex, D, metrics_);
  ops::increment_counter<float>(ex, data_step_counter());
}

void Gan::supervised_step(const Exec& ex, const RealSource& real, const PhaseHook& hook) {
  Network<float>& G = *g_;
  const auto phase = [&](const char* name) {
    if (hook) hook(name);
  };
  ops::fill<float>(ex, G.param_count(), G.grads(), 0.0f);
  // G reads the real image's one-hot label and its mean pixel value (in [-1, 1], as the image),
  // and draws the image: the MSE to it is G's loss.
  real(ex, real_, real_classes_, data_step_counter());
  ops::one_hot<float>(ex, batch_, cfg_.classes, real_classes_, real_label_);
  g_->set_input(g_label_, real_label_);
  const int64_t per_image = image_.per_sample();
  ops::row_means<float>(ex, batch_, per_image, real_, local_noise());
  phase("data");
  G.forward(ex, local_noise(), batch_, BatchNormMode::Train, data_step_counter(), draw_seed_);
  phase("g_forward");
  ops::mse_loss<float>(ex, batch_ * per_image, G.output(), real_, G.output_grad(), metrics_ + kSumLossG);
  finish_g_step(ex, hook);
}

void Gan::train_step(const Exec& ex, const RealSource& real, const PhaseHook& hook, uint32_t penalty_steps) {
  if (cfg_.supervised()) return supervised_step(ex, real, hook);
  Network<float>& G = *g_;
  Network<float>& D = *d_;
  Objective& objective = *objective_;
  GradientPenalty<float>* penalty = objective.penalty();
  GANCU_CHECK(!penalty || objective.penalty_interval() == 1 || penalty_steps != kEveryDStep,
              "train_step: a lazy penalty (r1_interval > 1) needs the iteration's penalty_steps(step)");
  const int B = batch_;
  const auto phase = [&](const char* name) {
    if (hook) hook(name);
  };

  // Discriminator steps: each sees a new real batch and new noise, both keyed by the data step.
  // D runs twice (real, then fake) with batch statistics per pass, and its parameter gradients
  // sum over both passes (and the penalty), as in the PyTorch reference loop.
  for (int k = 0; k < cfg_.d_steps; ++k) {
    const bool penalized = penalty && (penalty_steps >> k & 1u);
    ops::fill<float>(ex, D.param_count(), D.grads(), 0.0f);
    real(ex, real_, real_classes_, data_step_counter());
    use_real_labels(ex);
    phase("data");
    d_real_pass(ex, penalized);
    phase("d_real");
    ops::fill_noise<float>(ex, int64_t(shard_.global_batch) * cfg_.z_dim, z_, cfg_.latent, cfg_.seed,
                           kStreamNoiseD, data_step_counter());
    draw_fake_labels(ex);  // G draws, and D judges, the fake batch with its classes
    G.forward(ex, local_noise(), B, BatchNormMode::Train, data_step_counter(), draw_seed_);
    phase("g_forward");
    d_fake_pass(ex, G.output(), penalized);
    phase("d_fake");
    average_gradients(ex, D, "D's gradients");
    opt_d_->step(ex, D.params(), D.grads());
    objective.after_d_step(ex, D, metrics_);
    // The last D step's data step stays until G's backward: G's dropout masks are drawn from it,
    // in the forward above and again in the backward below.
    if (k + 1 < cfg_.d_steps) ops::increment_counter<float>(ex, data_step_counter());
    phase("d_optim");
  }

  // Generator step on the fake batch of the last D step (G is not re-run), through the updated
  // D. D's parameter gradients are not needed here.
  ops::fill<float>(ex, G.param_count(), G.grads(), 0.0f);
  if (fm_value_ >= 0) {
    // Feature matching: G's loss is ||mean f(x) - mean f(G(z))||^2 at D's value f, both through
    // the updated D, with the real batch of the last D step; the real mean is held constant.
    d_reads(real_label_);
    D.forward(ex, real_, B, BatchNormMode::Train, data_step_counter(), draw_seed_, kPassFeatureMatchingReal);
    ops::batch_mean<float>(ex, B, fm_features_, D.value_data(fm_value_), fm_real_mean_);
    d_reads(fake_label_);
    D.forward(ex, G.output(), B, BatchNormMode::Train, data_step_counter(), draw_seed_, kPassGeneratorStep);
    ops::feature_matching_loss<float>(ex, B, fm_features_, fm_real_mean_, D.value_data(fm_value_),
                                      D.value_grad(fm_value_), metrics_ + kSumLossG);
    D.backward(ex, fm_seeds_, G.output_grad(), false, false);
  } else {
    d_reads(fake_label_);  // G is trained with the classes it drew
    D.forward(ex, G.output(), B, BatchNormMode::Train, data_step_counter(), draw_seed_, kPassGeneratorStep);
    const bool direct = objective.g_loss(ex, D, G.output(), G.output_grad(), metrics_);
    D.backward(ex, G.output_grad(), direct, false);
  }
  if (dh_value_ >= 0) {
    // The distance head: weight / mse of G's second output against each image's label (its norm
    // or its mean distance to the batch), the label held constant; added to G's loss.
    const int64_t per_image = image_.per_sample();
    if (dh_pair_sq_)
      ops::pairwise_sq_distances<float>(ex, B, B, int(per_image), G.output(), G.output(), dh_pair_sq_);
    ops::distance_head_loss<float>(ex, B, per_image, G.output(), dh_pair_sq_, G.value_data(dh_value_),
                                   cfg_.distance_weight, G.value_grad(dh_value_), metrics_ + kSumLossG);
  }
  finish_g_step(ex, hook);
}

void Gan::finish_g_step(const Exec& ex, const PhaseHook& hook) {
  Network<float>& G = *g_;
  G.backward(ex, g_seeds_, nullptr, false, true);
  ops::increment_counter<float>(ex, data_step_counter());
  average_gradients(ex, G, "G's gradients");
  if (hook) hook("g_backward");
  opt_g_->step(ex, G.params(), G.grads());
  ops::increment_counter<float>(ex, step_counter());
  if (hook) hook("g_optim");
}

void Gan::average_gradients(const Exec& ex, Network<float>& net, const char* what) {
  if (!shard_.whole()) world().all_reduce_mean(ex, net.grads(), net.param_count(), what);
}

void Gan::average_states_over_ranks(const Exec& ex) {
  if (shard_.whole()) return;
  world().all_reduce_mean(ex, g_->states(), g_->state_count(), "G's running statistics");
  if (d_) world().all_reduce_mean(ex, d_->states(), d_->state_count(), "D's running statistics");
}

int64_t Gan::read_step(const Exec& ex) const {
  int64_t step = 0;
  copy_to_host(ex, &step, counters_, sizeof step);
  return step;
}

const float* Gan::take_metric_sums(const Exec& ex) {
  float* sums = metrics_host_->data();
  {
    // On CUDA this waits for the step's NCCL all-reduces, which need every rank.
    const Communicator::WatchedWait wait(world(), "the step's device work (reading the metrics)");
    copy_to_host(ex, sums, metrics_, kMetricSums * sizeof(float));
  }
  ops::fill<float>(ex, kMetricSums, metrics_, 0.0f);
  if (!shard_.whole()) {
    // Each rank's sums are of means over its shard: their mean over the ranks is the global batch's.
    double all[kMetricSums];
    for (int i = 0; i < kMetricSums; ++i) all[i] = sums[i];
    world().all_reduce_sum_host(all, kMetricSums, "the metrics");
    for (int i = 0; i < kMetricSums; ++i) sums[i] = float(all[i] / world().size());
  }
  return sums;
}

GanMetrics Gan::read_metrics(const Exec& ex) {
  const float* sums = take_metric_sums(ex);
  const int64_t step = read_step(ex);
  GanMetrics m;
  m.iterations = step - metrics_base_step_;
  metrics_base_step_ = step;
  if (!objective_) {  // the supervised generator: G's MSE alone
    m.output_kind = "mse";
    if (m.iterations > 0) m.loss_g = sums[kSumLossG] / double(m.iterations);
    return m;
  }
  m.output_kind = objective_->output_kind();
  m.has_penalty = objective_->penalty() != nullptr;
  m.is_began = m.output_kind == "recon";
  if (m.is_began) {
    float k = 0;
    copy_to_host(ex, &k, objective_->state()[0].second, sizeof k);
    m.k = k;
  }
  if (m.iterations <= 0) return m;
  const double d_steps = double(m.iterations) * cfg_.d_steps;
  m.loss_g = sums[kSumLossG] / double(m.iterations);
  m.d_real = sums[kSumDReal] / d_steps;
  m.d_fake = sums[kSumDFake] / d_steps;
  // The penalty runs on every D step, or on every r1_interval-th one.
  const double penalized = std::max(1.0, d_steps / double(objective_->penalty_interval()));
  m.penalty = sums[kSumPenalty] / penalized;
  m.grad_norm = sums[kSumGradNorm] / penalized;
  m.loss_d = sums[kSumLossD] / d_steps;
  if (m.is_began) {
    m.convergence = sums[kSumConvergence] / d_steps;
    m.loss_d = m.d_real - m.k * m.d_fake;  // from the window's means (documented in objectives.md)
  }
  return m;
}

GanMetrics Gan::read_pretrain_metrics(const Exec& ex, int64_t d_steps) {
  const float* sums = take_metric_sums(ex);
  GanMetrics m;
  m.iterations = d_steps;
  m.output_kind = objective_->output_kind();
  m.has_penalty = objective_->penalty() != nullptr;
  if (d_steps <= 0) return m;
  const double n = double(d_steps);
  m.loss_d = sums[kSumLossD] / n;
  m.d_real = sums[kSumDReal] / n;
  m.d_fake = sums[kSumDFake] / n;
  m.penalty = sums[kSumPenalty] / n;
  m.grad_norm = sums[kSumGradNorm] / n;
  return m;
}

void Gan::fixed_noise(const Exec& ex, int64_t n, uint64_t seed, uint64_t set_id, float* z) const {
  // The noise op reads its step from backend memory: set_id goes to the spare counter first. This
  // runs off the training path, so the small synchronous copy is fine.
  const int64_t step = int64_t(set_id);
  copy_to_device(ex, counters_ + 2, &step, sizeof step);
  ops::fill_noise<float>(ex, n * cfg_.z_dim, z, cfg_.latent, seed, kStreamFixedNoise, counters_ + 2);
}

void Gan::generate(const Exec& ex, const float* z, int64_t n, float* out, const int32_t* classes) {
  std::vector<int32_t> chunk_classes(cfg_.classes > 0 ? size_t(batch_) : 0);
  generate_chunks(ex, z, n, out, [&](int64_t begin, int chunk) {
    // Off the training path: the chunk's classes are copied up synchronously.
    for (int i = 0; i < chunk; ++i) {
      const int32_t c = classes ? classes[begin + i] : int32_t((begin + i) % cfg_.classes);
      if (c < 0 || c >= cfg_.classes)
        usage_error("class ", c, " is outside the model's classes 0..", cfg_.classes - 1);
      chunk_classes[size_t(i)] = c;
    }
    copy_to_device(ex, sample_classes_, chunk_classes.data(), size_t(chunk) * sizeof(int32_t));
    ops::one_hot<float>(ex, chunk, cfg_.classes, sample_classes_, fake_label_);
  });
}

void Gan::generate_with_labels(const Exec& ex, const float* z, int64_t n, const float* labels, float* out) {
  GANCU_CHECK(cfg_.classes > 0, "generate_with_labels: an unconditional model reads no label");
  generate_chunks(ex, z, n, out, [&](int64_t begin, int chunk) {
    copy_to_device(ex, fake_label_, labels + begin * cfg_.classes,
                   size_t(chunk) * size_t(cfg_.classes) * sizeof(float));
  });
}

void Gan::generate_chunks(const Exec& ex, const float* z, int64_t n, float* out,
                          const std::function<void(int64_t begin, int chunk)>& set_labels) {
  const BatchNormMode mode = cfg_.sample_bn == "running" ? BatchNormMode::Eval : BatchNormMode::BatchOnly;
  const int64_t per_image = image_.per_sample();
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int chunk = int(std::min<int64_t>(batch_, n - begin));
    if (cfg_.classes > 0) {
      set_labels(begin, chunk);  // into fake_label_
      g_->set_input(g_label_, fake_label_);
    }
    g_->forward(ex, z + begin * cfg_.z_dim, chunk, mode, step_counter(), cfg_.seed);
    copy_on_device(ex, out + begin * per_image, g_->output(), size_t(chunk) * per_image * sizeof(float));
  }
}

}  // namespace gancu
