#include "gancu/gan.h"

#include <cmath>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {

namespace {
// The metric sums, in device memory.
enum MetricSum { kLossD, kLossG, kDReal, kDFake, kDFakeG };
}  // namespace

bool GanMetrics::finite() const {
  return std::isfinite(loss_d) && std::isfinite(loss_g) && std::isfinite(d_real) && std::isfinite(d_fake);
}

Gan::Gan(const Config& cfg, Shape image, int batch)
    : cfg_(cfg), image_(image.with_batch(batch)), batch_(batch) {
  g_ = std::make_unique<Network<float>>("G", 1, cfg.generator, "model.generator",
                                        Shape::features(batch, cfg.z_dim), cfg.init);
  if (g_->output_shape() != image_)
    usage_error("model.generator: produces ", g_->output_shape().str(), " images but the data set has ",
                image_.str(), " (check the last layers, or --data)");
  d_ = std::make_unique<Network<float>>("D", 2, cfg.discriminator, "model.discriminator", image_, cfg.init);
  if (d_->output_shape() != Shape::features(batch, 1))
    usage_error("model.discriminator: must end in one logit per image, but produces ",
                d_->output_shape().str());
  opt_g_ = std::make_unique<Optimizer<float>>("optim.g", cfg.optim_g, g_->param_count());
  opt_d_ = std::make_unique<Optimizer<float>>("optim.d", cfg.optim_d, d_->param_count());
}

Gan::~Gan() = default;

void Gan::plan(ArenaPlan& plan, const Exec& ex) {
  g_->plan(plan, ex);
  d_->plan(plan, ex);
  opt_g_->plan(plan);
  opt_d_->plan(plan);
  real_slot_ = plan.add_array<float>(ArenaKind::Activations, "real batch", size_t(image_.numel()));
  z_slot_ = plan.add_array<float>(ArenaKind::Activations, "latent batch", size_t(batch_) * cfg_.z_dim);
  counters_slot_ = plan.add_array<int64_t>(ArenaKind::State, "step counters", 3);
  metrics_slot_ = plan.add_array<float>(ArenaKind::State, "metric sums", kMetricSums);
}

void Gan::bind(const Arena& arena) {
  g_->bind(arena);
  d_->bind(arena);
  opt_g_->bind(arena);
  opt_d_->bind(arena);
  real_ = arena.get<float>(real_slot_);
  z_ = arena.get<float>(z_slot_);
  counters_ = arena.get<int64_t>(counters_slot_);
  metrics_ = arena.get<float>(metrics_slot_);
  metrics_host_ = std::make_unique<HostBuffer<float>>(arena.backend(), kMetricSums);
}

void Gan::initialize(const Exec& ex) {
  g_->initialize(ex, cfg_.seed);
  d_->initialize(ex, cfg_.seed);
  opt_g_->reset(ex);
  opt_d_->reset(ex);
  const int64_t zeros[3] = {0, 0, 0};
  copy_to_device(ex, counters_, zeros, sizeof zeros);
  restart_metrics(ex);
}

void Gan::restart_metrics(const Exec& ex) {
  ops::fill<float>(ex, kMetricSums, metrics_, 0.0f);
  metrics_base_step_ = read_step(ex);
}

void Gan::train_step(const Exec& ex, const RealSource& real, const PhaseHook& hook) {
  Network<float>& G = *g_;
  Network<float>& D = *d_;
  const int B = batch_;
  const float real_target = 1.0f - cfg_.label_smoothing;
  const auto phase = [&](const char* name) {
    if (hook) hook(name);
  };

  // Discriminator steps: each sees a new real batch and new noise, both keyed by the data step.
  // D runs twice (real, then fake) with batch statistics per pass, and its parameter gradients
  // sum over both passes, as in the PyTorch reference loop.
  for (int k = 0; k < cfg_.d_steps; ++k) {
    ops::fill<float>(ex, D.param_count(), D.grads(), 0.0f);
    real(ex, real_, data_step_counter());
    phase("data");
    D.forward(ex, real_, B, BatchNormMode::Train, data_step_counter(), cfg_.seed);
    ops::gan_loss<float>(ex, LossTerm{LossKind::BCE, real_target, 1.0f}, B, D.output(), D.output_grad(),
                         metrics_ + kLossD, metrics_ + kDReal);
    D.backward(ex, nullptr, false, true);
    phase("d_real");
    ops::fill_noise<float>(ex, int64_t(B) * cfg_.z_dim, z_, cfg_.latent, cfg_.seed, kStreamNoiseD,
                           data_step_counter());
    G.forward(ex, z_, B, BatchNormMode::Train, data_step_counter(), cfg_.seed);
    phase("g_forward");
    D.forward(ex, G.output(), B, BatchNormMode::Train, data_step_counter(), cfg_.seed);
    ops::gan_loss<float>(ex, LossTerm{LossKind::BCE, 0.0f, 1.0f}, B, D.output(), D.output_grad(),
                         metrics_ + kLossD, metrics_ + kDFake);
    D.backward(ex, nullptr, false, true);
    phase("d_fake");
    opt_d_->step(ex, D.params(), D.grads());
    // The last D step's data step stays until G's backward: G's dropout masks are drawn from it,
    // in the forward above and again in the backward below.
    if (k + 1 < cfg_.d_steps) ops::increment_counter<float>(ex, data_step_counter());
    phase("d_optim");
  }

  // Generator step on the fake batch of the last D step (G is not re-run), through the updated
  // D: non-saturating loss, target 1. D's parameter gradients are not needed here.
  ops::fill<float>(ex, G.param_count(), G.grads(), 0.0f);
  D.forward(ex, G.output(), B, BatchNormMode::Train, step_counter(), cfg_.seed);
  ops::gan_loss<float>(ex, LossTerm{LossKind::BCE, 1.0f, 1.0f}, B, D.output(), D.output_grad(),
                       metrics_ + kLossG, metrics_ + kDFakeG);
  D.backward(ex, G.output_grad(), false, false);
  G.backward(ex, nullptr, false, true);
  ops::increment_counter<float>(ex, data_step_counter());
  phase("g_backward");
  opt_g_->step(ex, G.params(), G.grads());
  ops::increment_counter<float>(ex, step_counter());
  phase("g_optim");
}

int64_t Gan::read_step(const Exec& ex) const {
  int64_t step = 0;
  copy_to_host(ex, &step, counters_, sizeof step);
  return step;
}

GanMetrics Gan::read_metrics(const Exec& ex) {
  float* sums = metrics_host_->data();
  copy_to_host(ex, sums, metrics_, kMetricSums * sizeof(float));
  ops::fill<float>(ex, kMetricSums, metrics_, 0.0f);
  const int64_t step = read_step(ex);
  GanMetrics m;
  m.iterations = step - metrics_base_step_;
  metrics_base_step_ = step;
  if (m.iterations <= 0) return m;
  const double d_steps = double(m.iterations) * cfg_.d_steps;
  m.loss_d = sums[kLossD] / d_steps;
  m.loss_g = sums[kLossG] / double(m.iterations);
  m.d_real = sums[kDReal] / d_steps;
  m.d_fake = sums[kDFake] / d_steps;
  return m;
}

void Gan::fixed_noise(const Exec& ex, int64_t n, uint64_t seed, uint64_t set_id, float* z) const {
  // The noise op reads its step from backend memory: set_id goes to the spare counter first. This
  // runs off the training path, so the small synchronous copy is fine.
  const int64_t step = int64_t(set_id);
  copy_to_device(ex, counters_ + 2, &step, sizeof step);
  ops::fill_noise<float>(ex, n * cfg_.z_dim, z, cfg_.latent, seed, kStreamFixedNoise, counters_ + 2);
}

void Gan::generate(const Exec& ex, const float* z, int64_t n, float* out) {
  const BatchNormMode mode = cfg_.sample_bn == "running" ? BatchNormMode::Eval : BatchNormMode::BatchOnly;
  const int64_t per_image = image_.per_sample();
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int chunk = int(std::min<int64_t>(batch_, n - begin));
    g_->forward(ex, z + begin * cfg_.z_dim, chunk, mode, step_counter(), cfg_.seed);
    copy_on_device(ex, out + begin * per_image, g_->output(), size_t(chunk) * per_image * sizeof(float));
  }
}

}  // namespace gancu
