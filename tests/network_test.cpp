// Whole networks on the CPU in double precision: hand-written backward of every layer, chained
// through the network's buffer wiring (activation fusion, reshape/flatten aliasing, the input
// gradient), against central finite differences of the network's output.
#include "gancu/network.h"

#include <gtest/gtest.h>

#include "cpu_test_util.h"
#include "gancu/arena.h"
#include "gancu/check.h"
#include "gancu/config.h"
#include "gancu/gan.h"
#include "gancu/ops.h"
#include "network_test_util.h"

namespace gancu {
namespace {

using test::kFdEps;

// A network bound to its own CPU arena, with R (a random projection of the output) as the loss.
struct DoubleNet {
  Exec ex = Exec::cpu(1);
  Network<double> net;
  Arena arena;
  std::vector<double> input, input_grad, proj;

  DoubleNet(const std::vector<std::string>& layers, Shape in, InitScheme init = InitScheme::PyTorch)
      : net("N", 1, layers, "test", in, init) {
    arena = test::bind_on_cpu(net, ex, 3);
    input = test::randn(size_t(in.numel()), 11);
    input_grad.assign(input.size(), 0.0);
    proj = test::randn(size_t(net.output_shape().numel()), 12);
  }
  double loss() {
    net.forward(ex, input.data(), net.planned_batch(), BatchNormMode::BatchOnly, nullptr, 0);
    double s = 0;
    for (size_t i = 0; i < proj.size(); ++i) s += proj[i] * net.output()[i];
    return s;
  }
  void backward() {
    loss();
    std::copy(proj.begin(), proj.end(), net.output_grad());
    std::fill(net.grads(), net.grads() + net.param_count(), 0.0);
    net.backward(ex, input_grad.data(), false, true);
  }
};

// Finite differences over every parameter and every input element.
void check_network(DoubleNet& d) {
  d.backward();
  std::vector<double> params(d.net.params(), d.net.params() + d.net.param_count());
  const std::vector<double> analytic_params(d.net.grads(), d.net.grads() + d.net.param_count());
  const auto numeric_params = test::numeric_grad(params, [&] {
    std::copy(params.begin(), params.end(), d.net.params());
    return d.loss();
  });
  std::copy(params.begin(), params.end(), d.net.params());
  EXPECT_LT(test::rel_err(analytic_params, numeric_params), test::kGradTol);

  const std::vector<double> analytic_input = d.input_grad;
  const auto numeric_input = test::numeric_grad(d.input, [&] { return d.loss(); });
  EXPECT_LT(test::rel_err(analytic_input, numeric_input), test::kGradTol);
  double norm = 0;
  for (double g : analytic_input) norm += g * g;
  EXPECT_GT(norm, 0.0) << "input gradient is all zero: the check would prove nothing";
}

TEST(Network, GeneratorShapedNetworkMatchesFiniteDifferences) {
  // The dcgan generator's pattern at toy size: linear, bn+relu, reshape, convT, bn+relu, conv+tanh.
  DoubleNet d({"linear out=16 bias=false", "bn", "relu", "reshape h=2 w=2 c=4",
               "convT out=3 k=4 s=2 p=1 bias=false", "bn", "relu", "conv out=2 k=3 s=1 p=1", "tanh"},
              Shape::features(5, 3));
  EXPECT_EQ(d.net.output_shape(), Shape::image(5, 4, 4, 2));
  check_network(d);
}

TEST(Network, DiscriminatorShapedNetworkMatchesFiniteDifferences) {
  DoubleNet d({"conv out=4 k=4 s=2 p=1", "lrelu slope=0.2", "conv out=6 k=4 s=2 p=1 bias=false", "bn",
               "lrelu slope=0.2", "flatten", "linear out=1"},
              Shape::image(4, 8, 8, 2));
  EXPECT_EQ(d.net.output_shape(), Shape::features(4, 1));
  check_network(d);
}

TEST(Network, MlpWithUnfusedActivationsAndDropoutFreePathMatchesFiniteDifferences) {
  // mlp's order: the activation comes before batch norm, so it fuses into the linear layer; the
  // standalone sigmoid after reshape cannot fuse (reshape aliases) and runs as its own layer.
  DoubleNet d({"flatten", "linear out=7", "lrelu slope=0.2", "bn", "linear out=6", "tanh",
               "reshape h=2 w=3 c=1", "sigmoid"},
              Shape::image(3, 2, 2, 2));
  check_network(d);
}

TEST(Network, PoolingNetworkMatchesFiniteDifferences) {
  // conv+relu, overlapping padded max pooling, conv, overlapping average pooling, flatten, linear.
  DoubleNet d({"conv out=4 k=3 s=1 p=1", "relu", "maxpool k=3 s=2 p=1", "conv out=3 k=3", "avgpool k=2 s=1",
               "flatten", "linear out=2"},
              Shape::image(3, 9, 9, 2));
  // 9x9 -> conv 9x9 -> maxpool (9 + 2 - 3) / 2 + 1 = 5 -> conv 3x3 -> avgpool 2x2 -> 12 -> 2.
  EXPECT_EQ(d.net.output_shape(), Shape::features(3, 2));
  check_network(d);
}

TEST(Network, InceptionLayersMatchFiniteDifferences) {
  // The pieces Inception-v3 adds: a bilinear resize, 1x3 and 3x1 convolutions padded per axis, and
  // average pooling that leaves the padding out of its count.
  DoubleNet d({"resize h=7 w=6", "conv out=3 kh=1 kw=3 ph=0 pw=1", "relu",
               "conv out=2 kh=3 kw=1 ph=1 pw=0 bias=false", "avgpool k=3 s=1 p=1 include_pad=false",
               "conv out=2 kh=2 kw=3 s=2", "flatten", "linear out=2"},
              Shape::image(3, 4, 5, 2));
  // 4x5 -> resize 7x6 -> 1x3 p0x1: 7x6 -> 3x1 p1x0: 7x6 -> pool 7x6 -> 2x3 s2: 3x2 -> 12 -> 2.
  EXPECT_EQ(d.net.output_shape(), Shape::features(3, 2));
  check_network(d);
}

TEST(Network, InceptionLayersDescribeThemselves) {
  const Network<float> n("D", 2,
                         {"resize h=9 w=8", "conv out=4 kh=1 kw=7 ph=0 pw=3 bias=false", "conv out=4 k=3 p=1",
                          "conv out=4 kh=3 kw=1 p=1 pw=0", "avgpool k=3 s=1 p=1 include_pad=false",
                          "convT out=2 kh=1 kw=3 pw=1"},
                         "d", Shape::image(2, 5, 5, 3), InitScheme::DCGAN);
  EXPECT_EQ(n.output_shape(), Shape::image(2, 9, 8, 2));
  const std::string s = n.summary();
  EXPECT_NE(s.find("resize 5x5->9x8 bilinear"), std::string::npos) << s;
  EXPECT_NE(s.find("conv 3->4 k1x7 s1 p0x3 (no bias)"), std::string::npos) << s;
  EXPECT_NE(s.find("conv 4->4 k3 s1 p1"), std::string::npos) << s;
  EXPECT_NE(s.find("conv 4->4 k3x1 s1 p1x0"), std::string::npos) << s;
  EXPECT_NE(s.find("avgpool k3 s1 p1 (padding not counted)"), std::string::npos) << s;
  EXPECT_NE(s.find("convT 4->2 k1x3 s1 p0x1"), std::string::npos) << s;
  // weights [k, r, s, c]: 4*1*7*3 + (4*3*3*4 + 4) + (4*3*1*4 + 4) + 4*1*3*2 + 2
  EXPECT_EQ(n.trainable_count(), 84 + 148 + 52 + 26);
}

TEST(Network, PoolingDefaultsAndDescriptions) {
  const Network<float> n("D", 2, {"maxpool 2", "avgpool k=3 s=1 p=1", "maxpool k=3 s=2"}, "d",
                         Shape::image(2, 9, 9, 3), InitScheme::DCGAN);
  // 9 -> (9 - 2) / 2 + 1 = 4 (s defaults to k) -> (4 + 2 - 3) / 1 + 1 = 4 -> (4 - 3) / 2 + 1 = 1.
  EXPECT_EQ(n.output_shape(), Shape::image(2, 1, 1, 3));
  const std::string s = n.summary();
  EXPECT_NE(s.find("maxpool k2 s2 p0"), std::string::npos) << s;
  EXPECT_NE(s.find("avgpool k3 s1 p1"), std::string::npos) << s;
  EXPECT_EQ(n.trainable_count(), 0);
}

TEST(Network, LayerOutputGivesEachLayersBuffer) {
  Exec ex = Exec::cpu(1);
  // 0 conv (1 relu fused into it), 2 maxpool, 3 flatten (aliases 2), 4 linear (5 sigmoid fused).
  Network<double> net("D", 2,
                      {"conv out=3 k=3 p=1", "relu", "maxpool k=2", "flatten", "linear out=2", "sigmoid"},
                      "d", Shape::image(2, 4, 4, 1), InitScheme::PyTorch);
  ArenaPlan plan;
  net.plan(plan, ex);
  Arena arena(Backend::CPU, std::move(plan));
  ex.set_workspace(arena.workspace(), arena.workspace_bytes());
  net.bind(arena);
  net.initialize(ex, 1);
  const auto input = test::randn(32, 5);
  net.forward(ex, input.data(), 2, BatchNormMode::Train, nullptr, 0);

  // Layer 0: the conv's output with the fused relu applied.
  const double* conv = net.layer_output(0);
  int zeros = 0;
  for (int i = 0; i < 2 * 4 * 4 * 3; ++i) {
    EXPECT_GE(conv[i], 0.0);
    zeros += conv[i] == 0.0;
  }
  EXPECT_GT(zeros, 0) << "relu did not run in layer 0's output";
  // Layer 2: max pooling of layer 0's output.
  std::vector<double> pooled(2 * 2 * 2 * 3);
  ops::maxpool2d_forward<double>(ex, PoolDims::make(2, 4, 4, 3, 2, 2, 0), conv, pooled.data());
  EXPECT_EQ(std::vector<double>(net.layer_output(2), net.layer_output(2) + pooled.size()), pooled);
  EXPECT_EQ(net.layer_output(3), net.layer_output(2)) << "flatten relabels the pooled buffer";
  EXPECT_EQ(net.layer_output(4), net.output());
  for (int i = 0; i < 4; ++i) {
    EXPECT_GT(net.output()[i], 0.0) << "layer 4's output is the sigmoid's";
    EXPECT_LT(net.output()[i], 1.0);
  }

  for (int bad : {1, 5}) {
    try {
      (void)net.layer_output(bad);
      ADD_FAILURE() << "no error for fused layer " << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("fused into layer " + std::to_string(bad - 1)), std::string::npos)
          << e.what();
    }
  }
  for (int bad : {-1, 6, 100}) EXPECT_THROW((void)net.layer_output(bad), UsageError) << bad;
}

TEST(Network, LayerOutputOfAnUnfusedActivation) {
  Exec ex = Exec::cpu(1);
  // The tanh after flatten cannot fuse (flatten aliases its input): it is a layer of its own.
  Network<float> net("D", 2, {"linear out=3", "flatten", "tanh"}, "d", Shape::features(2, 4),
                     InitScheme::PyTorch);
  ArenaPlan plan;
  net.plan(plan, ex);
  Arena arena(Backend::CPU, std::move(plan));
  net.bind(arena);
  net.initialize(ex, 1);
  const std::vector<float> input(8, 0.5f);
  net.forward(ex, input.data(), 2, BatchNormMode::Train, nullptr, 0);
  EXPECT_EQ(net.layer_output(2), net.output());
  EXPECT_NE(net.layer_output(0), net.output());
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(std::tanh(net.layer_output(0)[i]), net.output()[i]);
}

TEST(Network, ParameterCountsMatchThePyTorchPeer) {
  // Counted independently by tools/test_tools.py from the same preset files.
  const struct {
    const char* preset;
    Shape image;
    int64_t g, d;
  } cases[] = {{"mlp", Shape::image(2, 28, 28, 1), 1489936, 533505},
               {"dcgan", Shape::image(2, 28, 28, 1), 1935809, 138689},
               {"dcgan32", Shape::image(2, 32, 32, 3), 1076611, 663361},
               {"stacked-mnist", Shape::image(2, 28, 28, 3), 1936963, 140737},
               {"ring8", Shape::features(2, 2), 67074, 66817},
               {"grid25", Shape::features(2, 2), 67074, 66817},
               {"wgan-gp", Shape::image(2, 28, 28, 1), 1935809, 138561},
               {"wgan", Shape::image(2, 28, 28, 1), 1935809, 138689},
               {"lsgan", Shape::image(2, 28, 28, 1), 1935809, 138689},
               {"hinge", Shape::image(2, 28, 28, 1), 1935809, 138689},
               {"dragan", Shape::image(2, 28, 28, 1), 1935809, 138561},
               {"r1", Shape::image(2, 28, 28, 1), 1935809, 138561},
               {"began", Shape::image(2, 28, 28, 1), 1935809, 471297},
               // dcgan's D + T (6272 x 100 x 5) and a final linear over 6272 + 100 features
               {"mbdisc", Shape::image(2, 28, 28, 1), 1935809, 3274789},
               // dcgan's D with a final linear over 7 x 7 x 129 features
               {"mbstd", Shape::image(2, 28, 28, 1), 1935809, 138738},
               // dcgan with 10 one-hot label features before G's first linear (10 x 12544) and 10
               // label channels into D's first conv (10 x 16 x 64)
               {"cgan", Shape::image(2, 28, 28, 1), 1935809 + 125440, 138689 + 10240},
               // G: a 10 x 50 label embedding and 50 more features into the first linear
               // (50 x 12544); D: wgan-gp's critic and the projection table (10 x 6272)
               {"cwgan-gp", Shape::image(2, 28, 28, 1), 1935809 + 500 + 627200, 138561 + 62720}};
  for (const auto& c : cases) {
    const Config cfg = load_config(c.preset, "", {});
    const Network<float> g("G", 1, cfg.generator, "g", network_inputs(cfg, Shape::features(2, cfg.z_dim)),
                           cfg.init);
    const Network<float> d("D", 2, cfg.discriminator, "d", network_inputs(cfg, c.image), cfg.init);
    EXPECT_EQ(g.output_shape(), c.image) << c.preset;
    EXPECT_EQ(g.trainable_count(), c.g) << c.preset;
    EXPECT_EQ(d.trainable_count(), c.d) << c.preset;
  }
}

TEST(Network, NamesFollowTheLayerStringsAndPyTorchConventions) {
  const Config cfg = load_config("dcgan", "", {});
  const Network<float> g("G", 1, cfg.generator, "g", Shape::features(2, cfg.z_dim), cfg.init);
  std::vector<std::string> names;
  for (const auto& t : g.tensors()) names.push_back(t.name);
  const std::vector<std::string> expected = {"G.0.weight",       "G.1.weight",      "G.1.bias",
                                             "G.1.running_mean", "G.1.running_var", "G.1.num_batches_tracked",
                                             "G.4.weight",       "G.5.weight",      "G.5.bias",
                                             "G.5.running_mean", "G.5.running_var", "G.5.num_batches_tracked",
                                             "G.7.weight",       "G.8.weight",      "G.8.bias",
                                             "G.8.running_mean", "G.8.running_var", "G.8.num_batches_tracked",
                                             "G.10.weight",      "G.10.bias"};
  EXPECT_EQ(names, expected);
}

TEST(Network, InitialParametersFollowTheScheme) {
  Exec ex = Exec::cpu(1);
  Network<float> net("G", 1, {"linear out=400 bias=false", "bn"}, "g", Shape::features(2, 100),
                     InitScheme::DCGAN);
  ArenaPlan plan;
  net.plan(plan, ex);
  Arena arena(Backend::CPU, std::move(plan));
  net.bind(arena);
  net.initialize(ex, 1);
  // 40,000 draws of N(0, 0.02): the sample std is within 2% of 0.02 with overwhelming odds.
  double s = 0, s2 = 0;
  for (int i = 0; i < 40000; ++i) {
    s += net.params()[i];
    s2 += double(net.params()[i]) * net.params()[i];
  }
  EXPECT_NEAR(s / 40000, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(s2 / 40000), 0.02, 0.0004);
  // running_var starts at 1, running_mean at 0.
  EXPECT_EQ(net.states()[0], 0.0f);
  EXPECT_EQ(net.states()[400], 1.0f);
  // Same seed, same values; another seed, other values.
  const float first = net.params()[0];
  net.initialize(ex, 1);
  EXPECT_EQ(net.params()[0], first);
  net.initialize(ex, 2);
  EXPECT_NE(net.params()[0], first);
}

TEST(Network, BadLayerStringsAreUsageErrorsNamingTheField) {
  const auto build = [](std::vector<std::string> layers, Shape in = Shape::features(2, 4)) {
    Network<float> n("G", 1, layers, "model.generator", in, InitScheme::DCGAN);
  };
  const auto expect_error = [&](std::vector<std::string> layers, const std::string& part, Shape in) {
    try {
      build(layers, in);
      ADD_FAILURE() << "no error for " << layers.back();
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("model.generator["), std::string::npos) << e.what();
    }
  };
  const Shape f = Shape::features(2, 4);
  expect_error({"linaer out=3"}, "unknown layer kind 'linaer'", f);
  expect_error({"linear"}, "needs out=", f);
  expect_error({"linear out=-3"}, "must be an integer >= 1", f);
  expect_error({"linear out=3 bias=maybe"}, "must be true or false", f);
  expect_error({"linear out=3 k=3"}, "has no argument 'k'", f);
  expect_error({"reshape h=3 w=3 c=3"}, "cannot reshape 4 values", f);
  expect_error({"linear out=3"}, "add \"flatten\"", Shape::image(2, 2, 2, 1));
  expect_error({"conv out=3 k=9 s=1 p=0"}, "does not fit", Shape::image(2, 4, 4, 1));
  expect_error({"bn momentum=2"}, "momentum", f);
  expect_error({"maxpool"}, "needs k=", Shape::image(2, 4, 4, 1));
  expect_error({"avgpool k=3 p=2"}, "padding 2 is more than half the kernel 3", Shape::image(2, 4, 4, 1));
  expect_error({"maxpool k=2"}, "does not fit", f);
  expect_error({"maxpool k=2 out=3"}, "has no argument 'out'", Shape::image(2, 4, 4, 1));
  expect_error({"maxpool k=3 p=1 include_pad=false"}, "has no argument 'include_pad'",
               Shape::image(2, 4, 4, 1));
  expect_error({"avgpool k=3 p=1 include_pad=no"}, "must be true or false", Shape::image(2, 4, 4, 1));
  expect_error({"conv out=3 s=1"}, "needs k=<integer> or both kh= and kw=", Shape::image(2, 4, 4, 1));
  expect_error({"conv out=3 kh=3 pw=1"}, "needs k=<integer> or both kh= and kw=", Shape::image(2, 4, 4, 1));
  expect_error({"convT out=3 kw=3"}, "needs k=<integer> or both kh= and kw=", Shape::image(2, 4, 4, 1));
  expect_error({"conv out=3 kh=1 kw=9"}, "does not fit", Shape::image(2, 4, 4, 1));
  expect_error({"conv out=3 k=3 ph=-1"}, "must be an integer >= 0", Shape::image(2, 4, 4, 1));
  expect_error({"resize h=4"}, "needs w=", Shape::image(2, 4, 4, 1));
  expect_error({"resize h=4 w=4"}, "resize needs an image", f);
  expect_error({"resize h=4 w=0"}, "must be an integer >= 1", Shape::image(2, 4, 4, 1));
  EXPECT_THROW(build({}), UsageError);
}

}  // namespace
}  // namespace gancu
