// The distance head (train.distance_head; ops.h, distance_head_loss): the loss and its gradient
// against their definition and finite differences, G's gradient through its second output with
// the labels held constant, the config errors, and a preset run in which the head learns.
#include <gtest/gtest.h>

#include <cmath>

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

// Pairwise squared distances of the rows of x [rows, cols], by direct loops.
std::vector<double> direct_pair_sq(const std::vector<double>& x, int rows, int cols) {
  std::vector<double> d(static_cast<size_t>(rows * rows));
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < rows; ++j)
      for (int c = 0; c < cols; ++c) {
        const double e = x[size_t(i * cols + c)] - x[size_t(j * cols + c)];
        d[size_t(i * rows + j)] += e * e;
      }
  return d;
}

// The labels of the definition: each row's norm, or its mean distance to the other rows.
std::vector<double> direct_labels(const std::vector<double>& x, int rows, int cols, bool mean_distance) {
  std::vector<double> label(static_cast<size_t>(rows));
  const std::vector<double> pair = direct_pair_sq(x, rows, cols);
  for (int i = 0; i < rows; ++i) {
    if (mean_distance) {
      for (int j = 0; j < rows; ++j)
        if (j != i) label[size_t(i)] += std::sqrt(pair[size_t(i * rows + j)]) / (rows - 1);
    } else {
      for (int c = 0; c < cols; ++c) label[size_t(i)] += x[size_t(i * cols + c)] * x[size_t(i * cols + c)];
      label[size_t(i)] = std::sqrt(label[size_t(i)]);
    }
  }
  return label;
}

TEST(DistanceHead, LossAndGradientFollowTheirDefinition) {
  Exec ex = Exec::cpu(2);
  const int rows = 6, cols = 5;
  const float weight = 0.7f;  // the op takes a float
  for (bool mean_distance : {false, true}) {
    SCOPED_TRACE(mean_distance ? "mean distance" : "norm");
    const std::vector<double> x = test::randn(size_t(rows * cols), 11);
    std::vector<double> head = test::randn(size_t(rows), 12, 2.0);
    const std::vector<double> pair = direct_pair_sq(x, rows, cols);
    const double* pair_sq = mean_distance ? pair.data() : nullptr;
    const std::vector<double> label = direct_labels(x, rows, cols, mean_distance);
    double mse = 0;
    for (int i = 0; i < rows; ++i)
      mse += (head[size_t(i)] - label[size_t(i)]) * (head[size_t(i)] - label[size_t(i)]);
    mse /= rows;

    double sum = 0.5;  // the loss adds to the running sum
    std::vector<double> dhead(static_cast<size_t>(rows));
    ops::distance_head_loss<double>(ex, rows, cols, x.data(), pair_sq, head.data(), weight, dhead.data(),
                                    &sum);
    EXPECT_NEAR(sum - 0.5, double(weight) / (mse + kDistanceHeadEps), 1e-12);

    // The gradient in the head, the labels (x) held constant.
    const auto numeric = test::numeric_grad(head, [&] {
      double l = 0;
      ops::distance_head_loss<double>(ex, rows, cols, x.data(), pair_sq, head.data(), weight, nullptr, &l);
      return l;
    });
    EXPECT_LT(test::rel_err(dhead, numeric), kGradTol);

    // Without a gradient buffer or a sum, nothing is written.
    ops::distance_head_loss<double>(ex, rows, cols, x.data(), pair_sq, head.data(), weight, nullptr, nullptr);
  }
}

// G with a head branch: the loss is <u, G(z)> (standing for D's gradient on the images) plus the
// head's loss, whose labels come from the unperturbed images (held constant, as in the step).
TEST(DistanceHead, GeneratorGradientThroughBothOutputsMatchesFiniteDifferences) {
  for (bool mean_distance : {false, true}) {
    SCOPED_TRACE(mean_distance ? "mean distance" : "norm");
    Exec ex = Exec::cpu(1);
    const int B = 5, P = 3;
    Network<double> G("G", 1,
                      {"linear out=6", "tanh name=t", "linear in=t out=1 name=head", "linear in=t out=3"},
                      "g", Shape::features(B, 2), InitScheme::PyTorch);
    Arena ga = test::bind_on_cpu(G, ex, 1);
    const int head = G.value_id("head");
    const auto z = test::randn(size_t(B * 2), 3), u = test::randn(size_t(B * P), 4);
    int64_t step = 0;
    G.forward(ex, z.data(), B, BatchNormMode::Train, &step, 1);
    const std::vector<double> frozen(G.output(), G.output() + B * P);
    const std::vector<double> pair = direct_pair_sq(frozen, B, P);
    const double* pair_sq = mean_distance ? pair.data() : nullptr;
    auto loss = [&](bool grads) {
      G.forward(ex, z.data(), B, BatchNormMode::Train, &step, 1);
      double l = 0;
      for (int i = 0; i < B * P; ++i) l += u[size_t(i)] * G.output()[i];
      ops::distance_head_loss<double>(ex, B, P, frozen.data(), pair_sq, G.value_data(head), 2.0f,
                                      grads ? G.value_grad(head) : nullptr, &l);
      return l;
    };
    loss(true);
    std::copy(u.begin(), u.end(), G.output_grad());
    std::fill(G.grads(), G.grads() + G.param_count(), 0.0);
    G.backward(ex, {G.output_id(), head}, nullptr, false, true);
    const std::vector<double> analytic(G.grads(), G.grads() + G.param_count());
    std::vector<double> p(G.params(), G.params() + G.param_count());
    const auto numeric = test::numeric_grad(p, [&] {
      std::copy(p.begin(), p.end(), G.params());
      return loss(false);
    });
    EXPECT_LT(test::rel_err(analytic, numeric), kGradTol);
    // The head's own weights have a gradient (the head's loss reached them).
    bool head_has_gradient = false;
    for (const NetworkTensor& t : G.tensors())
      if (t.name == "G.2.weight")
        for (int64_t i = 0; i < t.count; ++i) head_has_gradient |= analytic[size_t(t.offset + i)] != 0.0;
    EXPECT_TRUE(head_has_gradient);
  }
}

std::string config_message(const std::vector<ConfigOverride>& o) {
  try {
    const Config cfg = load_config("mlp-distance", "", o);
    Gan gan(cfg, Shape::image(8, 28, 28, 1), 8);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(DistanceHead, ConfigErrorsNameTheKey) {
  EXPECT_EQ(config_message({}), "accepted");
  const std::string unknown = config_message({{"train.distance_head", "nope", "test"}});
  EXPECT_NE(unknown.find("train.distance_head"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("trunk"), std::string::npos) << unknown;  // lists the named values
  EXPECT_NE(config_message({{"train.distance_head", "trunk", "test"}}).find("1024 numbers per image"),
            std::string::npos);
  EXPECT_NE(config_message({{"train.distance_head", "input", "test"}}).find("G's input"), std::string::npos);
  const std::string label = config_message({{"train.distance_label", "furthest", "test"}});
  EXPECT_NE(label.find("train.distance_label"), std::string::npos) << label;
  EXPECT_NE(config_message({{"train.distance_weight", "-1", "test"}}).find("train.distance_weight"),
            std::string::npos);
}

// The preset trains: a few steps on synthetic images move the head's weights (Adam leaves a
// parameter without gradient where it is), and the G loss holds weight / mse.
TEST(DistanceHead, APresetRunTrainsTheHead) {
  for (const char* label : {"norm", "mean_distance"}) {
    SCOPED_TRACE(label);
    const Config cfg = load_config("mlp-distance", "",
                                   {{"train.batch", "8", "test"}, {"train.distance_label", label, "test"}});
    Exec ex = Exec::cpu(1);
    GanSession s = make_session(cfg, Shape::image(8, 28, 28, 1), 8, ex);
    s.gan->initialize(ex);
    const DeviceDataset data(ex, make_synthetic_dataset(28, 28, 1, 64, 1), 8, 1);
    Network<float>& G = s.gan->generator();
    const NetworkTensor* head = nullptr;
    for (const NetworkTensor& t : G.tensors())
      if (t.name == "G.9.weight") head = &t;
    ASSERT_NE(head, nullptr);
    const std::vector<float> before(G.params() + head->offset, G.params() + head->offset + head->count);
    for (int i = 0; i < 3; ++i) s.gan->train_step(ex, data.source());
    const GanMetrics m = s.gan->read_metrics(ex);
    EXPECT_TRUE(m.finite());
    const std::vector<float> after(G.params() + head->offset, G.params() + head->offset + head->count);
    EXPECT_NE(before, after) << "the head's weights did not train";
  }
}

}  // namespace
}  // namespace gancu
