// The network as a graph, in double precision on the CPU: named values, several inputs, concat
// and add, taps and heads that receive gradients, summed gradients where a value is read twice;
// and the tangent pass of gradient penalties: jvp against finite differences of the forward, and
// jvp_backward against finite differences of <w, J(x; theta) v> in the parameters.
#include <gtest/gtest.h>

#include "cpu_test_util.h"
#include "gancu/arena.h"
#include "gancu/check.h"
#include "gancu/network.h"
#include "gancu/ops.h"
#include "network_test_util.h"

namespace gancu {
namespace {

using test::kGradTol;

// A network bound to its own CPU arena, with random external inputs.
struct GraphNet {
  Exec ex = Exec::cpu(1);
  Network<double> net;
  Arena arena;
  std::vector<std::vector<double>> inputs;  // per external input
  int64_t step = 3;                         // dropout's step key
  BatchNormMode mode = BatchNormMode::Train;

  GraphNet(const std::vector<std::string>& layers, const std::vector<NetworkInput>& in, bool tangents = false)
      : net("N", 1, layers, "test", in, InitScheme::PyTorch) {
    if (tangents) net.enable_tangents();
    arena = test::bind_on_cpu(net, ex, 3);
    // Biases away from zero so that piecewise-linear kinks are not where finite differences probe.
    for (size_t k = 0; k < in.size(); ++k) inputs.push_back(test::randn(size_t(in[k].shape.numel()), 20 + k));
    for (size_t k = 1; k < in.size(); ++k) net.set_input(int(k), inputs[k].data());
  }
  int batch() const { return net.planned_batch(); }
  void forward() { net.forward(ex, inputs[0].data(), batch(), mode, &step, 5); }
  std::vector<double> value(int id) const {
    const double* p = net.value_data(id);
    return std::vector<double>(p, p + net.value_shape(id).numel());
  }
  std::vector<double> params() const { return {net.params(), net.params() + net.param_count()}; }
  void set_params(const std::vector<double>& p) { std::copy(p.begin(), p.end(), net.params()); }
  std::vector<double> grads() const { return {net.grads(), net.grads() + net.param_count()}; }
  void zero_grads() { std::fill(net.grads(), net.grads() + net.param_count(), 0.0); }
};

// A loss that is a random projection of several values: L = sum_v <R_v, value_v>.
struct Projection {
  std::vector<int> ids;
  std::vector<std::vector<double>> r;
  Projection(const GraphNet& g, const std::vector<int>& values) : ids(values) {
    for (size_t k = 0; k < ids.size(); ++k)
      r.push_back(test::randn(size_t(g.net.value_shape(ids[k]).numel()), 40 + k));
  }
  double operator()(GraphNet& g) const {
    g.forward();
    double s = 0;
    for (size_t k = 0; k < ids.size(); ++k) s += test::dot(r[k], g.value(ids[k]));
    return s;
  }
  // Fills the seeded gradients and runs the backward.
  void backward(GraphNet& g, double* input_grad) const {
    g.forward();
    for (size_t k = 0; k < ids.size(); ++k) std::copy(r[k].begin(), r[k].end(), g.net.value_grad(ids[k]));
    g.zero_grads();
    g.net.backward(g.ex, ids, input_grad, false, true);
  }
};

void expect_gradients_match(GraphNet& g, const Projection& loss) {
  std::vector<double> dinput(g.inputs[0].size(), 0.0);
  loss.backward(g, dinput.data());
  const std::vector<double> analytic = g.grads();
  std::vector<double> p = g.params();
  const auto numeric = test::numeric_grad(p, [&] {
    g.set_params(p);
    return loss(g);
  });
  g.set_params(p);
  EXPECT_LT(test::rel_err(analytic, numeric), kGradTol) << "parameter gradients";
  const auto numeric_input = test::numeric_grad(g.inputs[0], [&] { return loss(g); });
  EXPECT_LT(test::rel_err(dinput, numeric_input), kGradTol) << "input gradient";
  double norm = 0;
  for (double v : dinput) norm += v * v;
  EXPECT_GT(norm, 0.0);
}

// Images [3, 4, 4, 2] and a label vector [3, 3] per sample. The graph: a conv whose activated
// output `h` is read three times (a concat with the labels as constant maps, a second branch,
// and a tap), the two branches summed, two heads.
const std::vector<std::string> kBranchy = {
    "conv out=3 k=3 p=1",
    "lrelu slope=0.2 name=h",  // 0, 1 (fused): h
    "concat in=h,labels",      // 2: 3 + 3 channels
    "conv out=4 k=3 s=2 p=1",
    "tanh name=t",  // 3, 4 (fused)
    "conv out=4 k=3 s=2 p=1 in=h",
    "sigmoid name=s",  // 5, 6 (fused): a branch from h
    "add in=t,s",
    "flatten name=flat",      // 7, 8
    "linear out=2 name=aux",  // 9: a second head
    "linear out=1 in=flat",   // 10: the output
};
std::vector<NetworkInput> branchy_inputs() {
  return {{"input", Shape::image(3, 4, 4, 2)}, {"labels", Shape::features(3, 3)}};
}

// A conditional critic: a learned embedding of the labels joins the image as constant maps, a
// smooth layer (tanh: its second-order terms send a primal adjoint back to the embedding in the
// tangent pass), and the projection term <table[y], phi> added to the linear output. The labels
// are random rows (their largest value is the class), so the classes are fixed while only the
// image moves.
const std::vector<std::string> kConditional = {
    "embed dim=2 in=labels name=e",     // 0
    "concat in=input,e",                // 1: 2 + 2 channels
    "conv out=3 k=3 s=2 p=1",           // 2
    "tanh",                             // 3 (fused)
    "flatten name=phi",                 // 4
    "linear out=1 name=logit",          // 5
    "project in=phi,labels name=proj",  // 6
    "add in=logit,proj",                // 7
};
std::vector<NetworkInput> conditional_inputs() {
  return {{"input", Shape::image(3, 6, 6, 2)}, {"labels", Shape::features(3, 4)}};
}

TEST(Graph, EmbedAndProjectMatchFiniteDifferences) {
  GraphNet g(kConditional, conditional_inputs());
  EXPECT_EQ(g.net.value_shape(g.net.value_id("e")), Shape::features(3, 2));
  EXPECT_EQ(g.net.output_shape(), Shape::features(3, 1));
  // Every parameter, the embedding's and the projection's tables included, gets the gradient of
  // finite differences; a loss on the embedding itself reaches its table directly.
  expect_gradients_match(g, Projection(g, {g.net.output_id(), g.net.value_id("e")}));
}

TEST(Graph, LabelLayersRefuseWrongInputs) {
  const auto bad = [](const std::vector<std::string>& layers, const char* want) {
    try {
      GraphNet g(layers, conditional_inputs());
      ADD_FAILURE() << "accepted: " << layers.back();
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  bad({"embed dim=3"}, "reads class labels");  // the image, not the labels
  bad({"embed dim=0 in=labels"}, "dim must be an integer >= 1");
  bad({"flatten", "project in=labels"}, "two inputs");
  bad({"project in=input,labels"}, "feature vector first");
  bad({"flatten name=f", "project in=f,input"}, "reads class labels");
}

TEST(Graph, BranchesConcatAddHeadsAndTapsMatchFiniteDifferences) {
  GraphNet g(kBranchy, branchy_inputs());
  EXPECT_EQ(g.net.output_shape(), Shape::features(3, 1));
  EXPECT_EQ(g.net.value_shape(g.net.value_id("aux")), Shape::features(3, 2));
  EXPECT_EQ(g.net.value_shape(g.net.value_id("h")), Shape::image(3, 4, 4, 3));
  // Losses on the output, on the second head and on the tap h (whose gradient then also receives
  // the contributions of the three layers that read it).
  const Projection loss(g, {g.net.output_id(), g.net.value_id("aux"), g.net.value_id("h")});
  expect_gradients_match(g, loss);
}

TEST(Graph, AHeadWithoutALossGetsNoGradient) {
  GraphNet g(kBranchy, branchy_inputs());
  const Projection loss(g, {g.net.output_id()});
  expect_gradients_match(g, loss);
  // Layer 9 (the head `aux`) is skipped: its parameters keep a zero gradient.
  loss.backward(g, nullptr);
  for (const NetworkTensor& t : g.net.tensors())
    if (t.name.rfind("N.9.", 0) == 0)
      for (int64_t i = 0; i < t.count; ++i) EXPECT_EQ(g.net.grads()[t.offset + i], 0.0) << t.name;
}

TEST(Graph, ConcatBroadcastsFeaturesAsConstantMaps) {
  GraphNet g({"concat in=input,labels"},
             {{"input", Shape::image(2, 3, 3, 1)}, {"labels", Shape::features(2, 2)}});
  g.forward();
  const std::vector<double> out = g.value(g.net.output_id());
  ASSERT_EQ(out.size(), size_t(2 * 9 * 3));
  for (int n = 0; n < 2; ++n)
    for (int p = 0; p < 9; ++p) {
      EXPECT_EQ(out[size_t((n * 9 + p) * 3)], g.inputs[0][size_t(n * 9 + p)]);
      EXPECT_EQ(out[size_t((n * 9 + p) * 3 + 1)], g.inputs[1][size_t(n * 2)]);
      EXPECT_EQ(out[size_t((n * 9 + p) * 3 + 2)], g.inputs[1][size_t(n * 2 + 1)]);
    }
}

TEST(Graph, ANamedLayerKeepsItsActivationSeparate) {
  // `name=pre` makes the conv's own output observable, so the relu after it is a layer of its own
  // and `pre` holds values below zero.
  GraphNet g({"conv out=3 k=3 p=1 name=pre", "relu name=post", "flatten", "linear out=1"},
             {{"input", Shape::image(2, 4, 4, 1)}});
  g.forward();
  const auto pre = g.value(g.net.value_id("pre")), post = g.value(g.net.value_id("post"));
  EXPECT_LT(*std::min_element(pre.begin(), pre.end()), 0.0);
  for (size_t i = 0; i < pre.size(); ++i) EXPECT_EQ(post[i], std::max(pre[i], 0.0));
  EXPECT_NE(g.net.summary().find("relu -> post"), std::string::npos) << g.net.summary();
}

TEST(Graph, BadGraphsAreUsageErrorsNamingTheLayer) {
  const auto expect_error = [](std::vector<std::string> layers, const std::string& part) {
    try {
      Network<float> n("D", 2, layers, "model.discriminator", {{"input", Shape::image(2, 4, 4, 1)}},
                       InitScheme::DCGAN);
      ADD_FAILURE() << "no error for " << layers.back();
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("model.discriminator["), std::string::npos) << e.what();
    }
  };
  expect_error({"conv out=2 k=3 p=1", "linear out=1 in=nowhere"}, "in= names 'nowhere'");
  expect_error({"conv out=2 k=3 p=1 name=a", "conv out=2 k=3 p=1 name=a"}, "'a' is already used");
  expect_error({"conv out=2 k=3 p=1 name=input"}, "'input' is already used");
  expect_error({"conv out=2 k=3 p=1 in=later", "relu name=later"}, "in= names 'later'");
  expect_error({"conv out=2 k=3 p=1 name=a", "conv out=2 k=3 in=a,input"}, "reads one input");
  expect_error({"concat"}, "needs in= with two or more inputs");
  expect_error({"conv out=2 k=3 name=small", "concat in=small,input"}, "concat of images of different sizes");
  expect_error({"conv out=2 k=3 p=1 name=a", "add in=a,input"}, "add of different shapes");
  expect_error({"conv out=2 k=3 p=1 name=1a"}, "not a valid name");
  expect_error({"conv out=2 k=3 p=1 in=input,"}, "in= ");
  expect_error({"conv out=2 k=3 p=1 name=a name=b"}, "'name' given twice");
}

// ---- The tangent pass ----------------------------------------------------------------------

// Networks whose tangent pass is checked: every layer kind that has one, fused and unfused
// activations (the smooth ones bring second-order terms), and the label input without a tangent.
struct TangentCase {
  const char* what;
  std::vector<std::string> layers;
  std::vector<NetworkInput> inputs;
};
std::vector<TangentCase> tangent_cases() {
  const Shape img = Shape::image(3, 6, 6, 2);
  return {
      {"critic: conv+lrelu, linear",
       {"conv out=3 k=4 s=2 p=1", "lrelu slope=0.2", "flatten", "linear out=1"},
       {{"input", img}}},
      {"smooth: conv+tanh, unfused sigmoid, linear+tanh",
       {"conv out=3 k=3 s=1 p=1", "tanh", "flatten", "sigmoid", "linear out=4", "tanh", "linear out=1"},
       {{"input", img}}},
      {"pools and dropout",
       {"conv out=3 k=3 p=1", "relu", "maxpool k=3 s=2 p=1", "dropout p=0.3", "avgpool k=2 s=1", "flatten",
        "linear out=1"},
       {{"input", img}}},
      {"transposed conv",
       {"convT out=2 k=4 s=2 p=1", "lrelu", "conv out=1 k=3 s=2", "flatten", "linear out=1"},
       {{"input", img}}},
      {"inception pieces: resize, per-axis convs, avgpool without the padding",
       {"resize h=7 w=5", "conv out=3 kh=1 kw=3 pw=1", "tanh", "conv out=2 kh=3 kw=1 ph=1",
        "avgpool k=3 s=1 p=1 include_pad=false", "flatten", "linear out=1"},
       {{"input", img}}},
      {"graph with labels", kBranchy, branchy_inputs()},
      {"conditional critic: embedding maps, projection", kConditional, conditional_inputs()},
  };
}

// The network's output at the point of the last forward, at input x + e v.
std::vector<double> output_at(GraphNet& g, const std::vector<double>& v, double e) {
  const std::vector<double> keep = g.inputs[0];
  for (size_t i = 0; i < v.size(); ++i) g.inputs[0][i] += e * v[i];
  g.forward();
  std::vector<double> out = g.value(g.net.output_id());
  g.inputs[0] = keep;
  return out;
}

TEST(Graph, JvpIsTheDirectionalDerivativeOfTheForward) {
  for (const TangentCase& c : tangent_cases()) {
    SCOPED_TRACE(c.what);
    GraphNet g(c.layers, c.inputs, true);
    const std::vector<double> v = test::randn(g.inputs[0].size(), 77);
    g.forward();
    g.net.jvp(g.ex, v.data());
    const double* t = g.net.tangent_output();
    const std::vector<double> analytic(t, t + g.net.output_shape().numel());
    const double e = test::kFdEps;
    const auto up = output_at(g, v, e), down = output_at(g, v, -e);
    std::vector<double> numeric(up.size());
    for (size_t i = 0; i < up.size(); ++i) numeric[i] = (up[i] - down[i]) / (2 * e);
    EXPECT_LT(test::rel_err(analytic, numeric), kGradTol);
  }
}

// S(theta) = <w, J(x; theta) v>: what a gradient penalty differentiates. jvp_backward must give
// dS/dtheta (accumulated into the gradients).
double directional(GraphNet& g, const std::vector<double>& v, const std::vector<double>& w) {
  g.forward();
  g.net.jvp(g.ex, v.data());
  const double* t = g.net.tangent_output();
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += w[i] * t[i];
  return s;
}

TEST(Graph, JvpBackwardGivesTheParameterGradientOfTheDirectionalDerivative) {
  for (const TangentCase& c : tangent_cases()) {
    SCOPED_TRACE(c.what);
    GraphNet g(c.layers, c.inputs, true);
    const std::vector<double> v = test::randn(g.inputs[0].size(), 78);
    const std::vector<double> w = test::randn(size_t(g.net.output_shape().numel()), 79);
    directional(g, v, w);
    std::copy(w.begin(), w.end(), g.net.tangent_output_grad());
    // Gradients accumulate: start from a known sum.
    const std::vector<double> before = test::randn(size_t(g.net.param_count()), 80);
    std::copy(before.begin(), before.end(), g.net.grads());
    g.net.jvp_backward(g.ex);
    std::vector<double> analytic = g.grads();
    for (size_t i = 0; i < analytic.size(); ++i) analytic[i] -= before[i];

    std::vector<double> p = g.params();
    const auto numeric = test::numeric_grad(p, [&] {
      g.set_params(p);
      return directional(g, v, w);
    });
    g.set_params(p);
    EXPECT_LT(test::rel_err(analytic, numeric), kGradTol);
    double norm = 0;
    for (double x : analytic) norm += x * x;
    EXPECT_GT(norm, 0.0);
  }
}

TEST(Graph, TheTangentPassRefusesBatchNorm) {
  Network<float> n(
      "D", 2,
      {"conv out=4 k=4 s=2 p=1", "lrelu", "conv out=8 k=4 s=2 p=1", "bn", "lrelu", "flatten", "linear out=1"},
      "model.discriminator", Shape::image(2, 8, 8, 1), InitScheme::DCGAN);
  EXPECT_NE(n.tangent_refusal().find("layer 3 (batchnorm2d 8 +act)"), std::string::npos)
      << n.tangent_refusal();
  try {
    n.enable_tangents();
    ADD_FAILURE() << "batch norm accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("\"ln\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {

// Minibatch discrimination and minibatch standard deviation inside a discriminator, against
// finite differences in double: their parameters (T), the layers before them, and the input.
TEST(Graph, MinibatchDiscriminationMatchesFiniteDifferences) {
  GraphNet g({"linear out=6", "lrelu", "mbdisc kernels=4 dims=3 std=0.5 name=mb", "linear out=1"},
             {{"input", Shape::features(5, 3)}});
  EXPECT_EQ(g.net.value_shape(g.net.value_id("mb")), Shape::features(5, 10));  // 6 features + 4 statistics
  expect_gradients_match(g, Projection(g, {g.net.output_id()}));
}

TEST(Graph, MinibatchStdMatchesFiniteDifferences) {
  GraphNet g({"conv out=3 k=3 p=1", "lrelu", "mbstd", "conv out=2 k=3 s=2 p=1", "flatten", "linear out=1"},
             {{"input", Shape::image(4, 4, 4, 2)}});
  expect_gradients_match(g, Projection(g, {g.net.output_id()}));
}

TEST(Graph, TheTangentPassRefusesBatchStatistics) {
  for (const char* layer : {"mbdisc kernels=4 dims=2", "mbstd"}) {
    Network<float> n("D", 2, {"linear out=8", "lrelu", layer, "linear out=1"}, "model.discriminator",
                     Shape::features(4, 2), InitScheme::DCGAN);
    EXPECT_NE(n.tangent_refusal().find("layer 2"), std::string::npos) << n.tangent_refusal();
    EXPECT_THROW(n.enable_tangents(), UsageError) << layer;
  }
}

TEST(Graph, MinibatchLayerErrorsNameTheLayer) {
  auto build = [](const std::vector<std::string>& layers) {
    Network<float> n("D", 2, layers, "model.discriminator", Shape::image(4, 4, 4, 1), InitScheme::DCGAN);
  };
  auto message = [&](const std::vector<std::string>& layers) {
    try {
      build(layers);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({"mbdisc", "flatten", "linear out=1"}).find("add \"flatten\""), std::string::npos);
  EXPECT_NE(message({"flatten", "mbdisc dims=17", "linear out=1"}).find("at most 16"), std::string::npos);
  EXPECT_NE(message({"flatten", "mbdisc std=0", "linear out=1"}).find("std"), std::string::npos);
  EXPECT_NE(message({"flatten", "mbdisc kernels=0", "linear out=1"}).find("kernels"), std::string::npos);
  EXPECT_NE(message({"mbstd eps=-1", "flatten", "linear out=1"}).find("eps"), std::string::npos);
  EXPECT_EQ(message({"mbstd", "flatten", "mbdisc 7 3", "linear out=1"}), "accepted");
}

}  // namespace
}  // namespace gancu
