// Feature matching (Salimans et al. 2016; train.feature_matching): the loss op against its
// definition and finite differences in double; the generator's gradient through D's seeded
// backward at a named tap, against finite differences of the whole loss in G's parameters (in
// double, the composition Gan::train_step runs); the config errors; and short runs on the
// 8-Gaussian ring (feature matching, and D with each minibatch layer) whose generator learns to
// spread onto the ring.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cpu_test_util.h"
#include "gancu/config.h"
#include "gancu/gan.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"
#include "network_test_util.h"

namespace gancu {
namespace {

using test::kGradTol;

TEST(FeatureMatching, LossAndGradientMatchTheDefinitionAndFiniteDifferences) {
  Exec ex = Exec::cpu();
  const int64_t rows = 6, cols = 5;
  const auto real = test::randn(size_t(rows * cols), 1);
  auto fake = test::randn(size_t(rows * cols), 2, 0.7);
  std::vector<double> mean(cols);
  ops::batch_mean<double>(ex, rows, cols, real.data(), mean.data());
  for (int64_t c = 0; c < cols; ++c) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += real[size_t(r * cols + c)];
    EXPECT_NEAR(mean[size_t(c)], s / rows, 1e-15);
  }
  auto loss = [&] {
    double l = 0;
    ops::feature_matching_loss<double>(ex, rows, cols, mean.data(), fake.data(), nullptr, &l);
    return l;
  };
  double want = 0;
  for (int64_t c = 0; c < cols; ++c) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += fake[size_t(r * cols + c)];
    want += (s / rows - mean[size_t(c)]) * (s / rows - mean[size_t(c)]);
  }
  double sum = 1.0;  // the loss is added to the sum
  std::vector<double> grad(fake.size(), NAN);
  ops::feature_matching_loss<double>(ex, rows, cols, mean.data(), fake.data(), grad.data(), &sum);
  EXPECT_NEAR(sum, 1.0 + want, 1e-14);
  EXPECT_LT(test::rel_err(grad, test::numeric_grad(fake, loss)), kGradTol);
  // Float against double.
  const auto ff = test::cast<float>(fake), mf = test::cast<float>(mean);
  float lf = 0;
  std::vector<float> gf(fake.size());
  ops::feature_matching_loss<float>(ex, rows, cols, mf.data(), ff.data(), gf.data(), &lf);
  EXPECT_NEAR(lf, want, 1e-5 * want);
  EXPECT_LT(test::rel_err(gf, grad), 1e-6);
}

// G and D in double; the loss ||mean f(x) - mean f(G(z))||^2 at a tap of D, computed and
// differentiated as Gan::train_step does: batch_mean of the real pass, feature_matching_loss on
// the fake pass, D's backward seeded at the tap into G's output, G's backward.
// The taps: a fused activation's output (h) and a flatten that aliases its input (flat).
TEST(FeatureMatching, GeneratorGradientThroughATapMatchesFiniteDifferences) {
  for (const char* tap_name : {"h", "flat"}) {
    SCOPED_TRACE(tap_name);
    Exec ex = Exec::cpu(1);
    const int B = 5;
    Network<double> G("G", 1, {"linear out=6", "tanh", "linear out=3"}, "g", Shape::features(B, 2),
                      InitScheme::PyTorch);
    Network<double> D("D", 2,
                      {"linear out=8", "lrelu name=h", "reshape h=2 w=2 c=2", "flatten name=flat",
                       "mbdisc kernels=3 dims=2 std=0.5", "linear out=1"},
                      "d", Shape::features(B, 3), InitScheme::PyTorch);
    Arena ga = test::bind_on_cpu(G, ex, 1), da = test::bind_on_cpu(D, ex, 2);
    const int tap = D.value_id(tap_name);
    const int64_t F = D.value_shape(tap).per_sample();
    const auto z = test::randn(size_t(B * 2), 3), x = test::randn(size_t(B * 3), 4);
    int64_t step = 0;
    std::vector<double> real_mean(static_cast<size_t>(F));
    auto loss = [&] {
      D.forward(ex, x.data(), B, BatchNormMode::Train, &step, 1);
      ops::batch_mean<double>(ex, B, F, D.value_data(tap), real_mean.data());
      G.forward(ex, z.data(), B, BatchNormMode::Train, &step, 1);
      D.forward(ex, G.output(), B, BatchNormMode::Train, &step, 1);
      double l = 0;
      ops::feature_matching_loss<double>(ex, B, F, real_mean.data(), D.value_data(tap), D.value_grad(tap),
                                         &l);
      return l;
    };
    loss();
    std::fill(G.grads(), G.grads() + G.param_count(), 0.0);
    std::fill(D.grads(), D.grads() + D.param_count(), 0.0);
    D.backward(ex, {tap}, G.output_grad(), false, false);
    G.backward(ex, nullptr, false, true);
    const std::vector<double> analytic(G.grads(), G.grads() + G.param_count());
    for (int64_t i = 0; i < D.param_count(); ++i)
      EXPECT_EQ(D.grads()[i], 0.0) << "D's gradients are not wanted";
    std::vector<double> p(G.params(), G.params() + G.param_count());
    const auto numeric = test::numeric_grad(p, [&] {
      std::copy(p.begin(), p.end(), G.params());
      return loss();
    });
    EXPECT_LT(test::rel_err(analytic, numeric), kGradTol);
    double norm = 0;
    for (double v : analytic) norm += v * v;
    EXPECT_GT(norm, 0.0);
  }
}

Config ring_config(const std::vector<ConfigOverride>& extra) {
  std::vector<ConfigOverride> o = {
      {"model.discriminator",
       R"(["linear out=128", "lrelu slope=0.2 name=features", "linear out=128", "lrelu slope=0.2", "linear out=1"])",
       "test"},
      {"model.generator",
       R"(["linear out=128", "lrelu slope=0.2", "linear out=128", "lrelu slope=0.2", "linear out=2"])",
       "test"}};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_config("ring8", "", o);
}

TEST(FeatureMatching, ConfigErrorsNameTheKey) {
  Exec ex = Exec::cpu(1);
  auto message = [&](const std::vector<ConfigOverride>& o) {
    try {
      Gan gan(ring_config(o), Shape::features(8, 2), 8);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string unknown = message({{"train.feature_matching", "nope", "test"}});
  EXPECT_NE(unknown.find("train.feature_matching"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("features"), std::string::npos) << unknown;  // lists the named values
  EXPECT_NE(message({{"train.feature_matching", "input", "test"}}).find("D's input"), std::string::npos);
  EXPECT_EQ(message({{"train.feature_matching", "features", "test"}}), "accepted");
}

// The 8-Gaussian ring (radius 2); the mean distance of G's samples from the centre, which starts
// near 0, and the share of samples within 0.3 of the ring.
struct RingFit {
  double mean_radius = 0, near_ring = 0;
};

RingFit train_on_ring(const Config& cfg, int steps, GanMetrics* metrics) {
  const int batch = cfg.batch;
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(cfg, Shape::features(batch, 2), batch, ex);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  std::mt19937_64 rng(17);
  std::normal_distribution<double> noise(0.0, 0.02);
  std::uniform_int_distribution<int> mode(0, 7);
  std::vector<float> points(size_t(batch) * 2);
  const Gan::RealSource ring = [&](const Exec& e, float* out, int32_t*, const int64_t*) {
    for (int i = 0; i < batch; ++i) {
      const double a = 2 * 3.14159265358979323846 * mode(rng) / 8;
      points[size_t(2 * i)] = float(2 * std::cos(a) + noise(rng));
      points[size_t(2 * i + 1)] = float(2 * std::sin(a) + noise(rng));
    }
    copy_to_device(e, out, points.data(), points.size() * sizeof(float));
  };
  for (int step = 0; step < steps; ++step) gan.train_step(ex, ring);
  *metrics = gan.read_metrics(ex);
  const int n = 1000;
  Buffer<float> z(ex, size_t(n) * cfg.z_dim), out(ex, size_t(n) * 2);
  gan.fixed_noise(ex, n, 99, 0, z.data());
  gan.generate(ex, z.data(), n, out.data());
  const auto v = out.download();
  RingFit fit;
  for (int i = 0; i < n; ++i) {
    const double r = std::hypot(v[size_t(2 * i)], v[size_t(2 * i + 1)]);
    fit.mean_radius += r / n;
    fit.near_ring += (std::fabs(r - 2.0) < 0.3) / double(n);
  }
  return fit;
}

TEST(FeatureMatching, AShortRunOnTheRingSpreadsTheGeneratorOntoTheRing) {
  // Feature matching matches means of features, not samples: it moves G onto the ring's scale
  // (the untrained G's samples lie within 1 of the centre) but, as Salimans et al. note, does not
  // make sharp samples; measured here: mean radius 1.78, a quarter of the samples within 0.3 of
  // the ring (the minibatch layers below reach 0.97).
  const Config cfg = ring_config({{"train.feature_matching", "features", "test"},
                                  {"train.batch", "64", "test"},
                                  {"optim.g.lr", "1e-3", "test"},
                                  {"optim.d.lr", "1e-3", "test"}});
  GanMetrics m;
  const RingFit before = train_on_ring(cfg, 0, &m);
  const RingFit fit = train_on_ring(cfg, 1500, &m);
  EXPECT_TRUE(m.finite());
  std::printf(
      "feature matching: mean radius %.3f (untrained %.3f), share within 0.3 of the ring %.3f, G loss %.4g\n",
      fit.mean_radius, before.mean_radius, fit.near_ring, m.loss_g);
  EXPECT_LT(before.mean_radius, 1.0);
  EXPECT_GT(fit.mean_radius, 1.5);
  EXPECT_LT(fit.mean_radius, 2.5);
  EXPECT_GT(fit.near_ring, 0.15);
}

TEST(MinibatchLayers, AShortRunOnTheRingWithEachLayerSpreadsTheGeneratorOntoTheRing) {
  for (const char* layer : {"mbdisc kernels=16 dims=4", "mbstd"}) {
    SCOPED_TRACE(layer);
    GanMetrics m;
    const std::string d = std::string(R"(["linear out=128", "lrelu slope=0.2", ")") + layer +
                          R"(", "linear out=128", "lrelu slope=0.2", "linear out=1"])";
    const RingFit fit = train_on_ring(ring_config({{"model.discriminator", d, "test"},
                                                   {"train.batch", "64", "test"},
                                                   {"optim.g.lr", "1e-3", "test"},
                                                   {"optim.d.lr", "1e-3", "test"}}),
                                      1500, &m);
    EXPECT_TRUE(m.finite());
    std::printf("%s: mean radius %.3f, share within 0.3 of the ring %.3f\n", layer, fit.mean_radius,
                fit.near_ring);
    EXPECT_GT(fit.mean_radius, 1.5);
    EXPECT_LT(fit.mean_radius, 2.5);
    EXPECT_GT(fit.near_ring, 0.5);
  }
}

}  // namespace
}  // namespace gancu
