// The supervised generator (train.mode = "supervised"; docs/conditional.md#the-supervised-generator):
// its ops against their definitions and finite differences; its config errors and label mixes; a
// short run of the preset on real MNIST whose MSE falls and whose images the shipped classifier
// reads as the requested digit (with the labels shuffled against the images, G has no reason to
// follow them and the accuracy falls to chance); and through the gancu binary, the sweep and mix
// grids and every bad input, each a clear message with exit code 2.
#include "gancu/supervised.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "cpu_test_util.h"
#include "gancu/check.h"
#include "gancu/classifier.h"
#include "gancu/config.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;

TEST(SupervisedOps, MseLossMatchesTheDefinitionAndFiniteDifferences) {
  Exec ex = Exec::cpu();
  const int64_t n = 23;
  auto x = test::randn(size_t(n), 1);
  const auto target = test::randn(size_t(n), 2, 0.5);
  auto loss = [&] {
    double l = 0;
    ops::mse_loss<double>(ex, n, x.data(), target.data(), nullptr, &l);
    return l;
  };
  double want = 0;
  for (int64_t i = 0; i < n; ++i)
    want += (x[size_t(i)] - target[size_t(i)]) * (x[size_t(i)] - target[size_t(i)]);
  want /= double(n);
  double sum = 1.0;  // the loss is added to the sum
  std::vector<double> grad(size_t(n), NAN);
  ops::mse_loss<double>(ex, n, x.data(), target.data(), grad.data(), &sum);
  EXPECT_NEAR(sum, 1.0 + want, 1e-14);
  EXPECT_LT(test::rel_err(grad, test::numeric_grad(x, loss)), test::kGradTol);
  // Float against double.
  const auto xf = test::cast<float>(x), tf = test::cast<float>(target);
  float lf = 0;
  std::vector<float> gf(static_cast<size_t>(n));
  ops::mse_loss<float>(ex, n, xf.data(), tf.data(), gf.data(), &lf);
  EXPECT_NEAR(lf, want, 1e-6 * want);
  EXPECT_LT(test::rel_err(gf, grad), 1e-6);
}

TEST(SupervisedOps, RowMeansAreEachImagesMeanPixel) {
  Exec ex = Exec::cpu();
  const int64_t rows = 5, cols = 7;
  const auto x = test::randn(size_t(rows * cols), 3);
  std::vector<double> means(size_t(rows), NAN);
  ops::row_means<double>(ex, rows, cols, x.data(), means.data());
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += x[size_t(r * cols + c)];
    EXPECT_NEAR(means[size_t(r)], s / double(cols), 1e-15) << "row " << r;
  }
}

// The mean pixel values of a data set, in [-1, 1]: a byte p is p / 127.5 - 1.
TEST(SupervisedLevels, PercentilesAndClassMeansOfTheImagesMeans) {
  Dataset d = make_synthetic_dataset(2, 2, 1, 200, 3);
  for (int64_t i = 0; i < d.count; ++i) {
    std::fill(d.images.begin() + i * 4, d.images.begin() + (i + 1) * 4, uint8_t(i));  // image i: all i
    d.labels[size_t(i)] = uint8_t(i % 2);
  }
  const std::vector<float> means = image_mean_levels(d);
  EXPECT_FLOAT_EQ(means[0], -1.0f);
  EXPECT_FLOAT_EQ(means[51], 51 / 127.5f - 1.0f);
  const PixelLevels l = pixel_levels(d, 3);
  EXPECT_FLOAT_EQ(l.low, 1 / 127.5f - 1.0f) << "1st percentile of 0..199: index floor(1.99)";
  EXPECT_FLOAT_EQ(l.high, 198 / 127.5f - 1.0f) << "99th: index ceil(197.01)";
  EXPECT_NEAR(l.class_mean[0], 99 / 127.5 - 1.0, 1e-6);  // 0, 2, ..., 198
  EXPECT_NEAR(l.class_mean[1], 100 / 127.5 - 1.0, 1e-6);
  EXPECT_EQ(l.class_mean[2], 0.0f) << "a class without images";
  const std::vector<float> s = sweep_levels(l, 3);
  EXPECT_FLOAT_EQ(s[0], l.low);
  EXPECT_FLOAT_EQ(s[1], 0.5f * (l.low + l.high));
  EXPECT_FLOAT_EQ(s[2], l.high);
}

std::string usage_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

TEST(SupervisedLevels, LabelMixesAreParsedAndBadOnesRefused) {
  const auto mix = parse_label_mix("5:0.5,0:0.5", 10, "--mix");
  ASSERT_EQ(mix.size(), 2u);
  EXPECT_EQ(mix[0].first, 5);
  EXPECT_EQ(mix[1].first, 0);
  EXPECT_FLOAT_EQ(mix[1].second, 0.5f);
  const SupervisedGrid g = mix_grid(10, parse_label_mix("1:0.25, 7:0.75", 10, "--mix"), {0.0f, 0.5f});
  ASSERT_EQ(g.rows.size(), 3u) << "each class, then the mix";
  EXPECT_EQ(g.rows[0][1], 1.0f);
  EXPECT_EQ(g.rows[1][7], 1.0f);
  EXPECT_FLOAT_EQ(g.rows[2][1], 0.25f);
  EXPECT_FLOAT_EQ(g.rows[2][7], 0.75f);
  EXPECT_EQ(g.row_names[2], "0.25 x 1 + 0.75 x 7");
  const auto bad = [](const char* text) {
    return usage_message([&] { parse_label_mix(text, 10, "--mix"); });
  };
  EXPECT_NE(bad("5:0.7,0:0.7").find("sum to 1.4"), std::string::npos) << bad("5:0.7,0:0.7");
  EXPECT_NE(bad("5:-0.5,0:1.5").find("weights are >= 0"), std::string::npos);
  EXPECT_NE(bad("10:0.5,0:0.5").find("outside the model's classes 0..9"), std::string::npos);
  EXPECT_NE(bad("5:1").find("fewer than two"), std::string::npos);
  EXPECT_NE(bad("5:0.5,5:0.5").find("given twice"), std::string::npos);
  EXPECT_NE(bad("five:1,0:0").find("not CLASS:WEIGHT"), std::string::npos);
  EXPECT_NE(bad("5:0.5x,0:0.5").find("not CLASS:WEIGHT"), std::string::npos);
}

TEST(SupervisedConfig, WhatTheModeNeedsIsAConfigErrorNamingTheKey) {
  const auto error = [](std::vector<ConfigOverride> o) {
    return usage_message([&] { load_config("supervised", "", o); });
  };
  EXPECT_EQ(load_config("supervised", "", {}).mode, "supervised");
  EXPECT_TRUE(load_config("supervised", "", {}).discriminator.empty());
  EXPECT_NE(error({{"model.classes", "0", "--set"}}).find("model.classes"), std::string::npos);
  EXPECT_NE(error({{"model.z_dim", "2", "--set"}}).find("model.z_dim = 1"), std::string::npos);
  EXPECT_NE(
      error({{"model.discriminator", R"(["flatten", "linear out=1"])", "--set"}}).find("model.discriminator"),
      std::string::npos);
  EXPECT_NE(error({{"train.feature_matching", "h", "--set"}}).find("train.feature_matching"),
            std::string::npos);
  EXPECT_NE(error({{"train.d_pretrain_steps", "5", "--set"}}).find("train.d_pretrain_steps"),
            std::string::npos);
  EXPECT_NE(error({{"log.eval_every", "5", "--set"}}).find("log.eval_every"), std::string::npos);
  EXPECT_NE(error({{"train.mode", "teacher", "--set"}}).find("train.mode"), std::string::npos);
  // A GAN still needs its D.
  EXPECT_NE(usage_message([] {
              load_config("mlp", "", {{"model.discriminator", "[]", "--set"}});
            }).find("model.discriminator"),
            std::string::npos);
}

// ---- Learning on real MNIST ---------------------------------------------------------------------

// The share of G's images that the shipped MNIST classifier reads as the requested class: for
// each class, G draws `per_class` images at the mean pixel values of that many real images of the
// class (the levels the data holds), with the class's one-hot label.
double class_accuracy(const Exec& ex, Gan& gan, const Dataset& data, int per_class, std::string* per) {
  const std::string path = default_classifier_path("mnist");
  EXPECT_FALSE(path.empty()) << "models/mnist_classifier.safetensors is missing";
  if (path.empty()) return 0;
  const auto classifier = Classifier::load(ex, path, 100);
  const std::vector<float> levels = image_mean_levels(data);
  const int classes = gan.classes();
  int correct_total = 0;
  for (int k = 0; k < classes; ++k) {
    std::vector<float> z;
    for (int64_t i = 0; i < data.count && int(z.size()) < per_class; ++i)
      if (data.labels[size_t(i)] == k) z.push_back(levels[size_t(i)]);
    const int n = int(z.size());
    Buffer<float> dz(ex, z.size()), images(ex, size_t(n) * gan.image().per_sample());
    copy_to_device(ex, dz.data(), z.data(), z.size() * sizeof(float));
    const std::vector<int32_t> requested(size_t(n), k);
    gan.generate(ex, dz.data(), n, images.data(), requested.data());
    const std::vector<uint8_t> pixels = float_to_u8(images.download());
    std::vector<float> probs(size_t(n) * classes);
    classifier->evaluate_u8(pixels.data(), n, probs.data(), nullptr);
    int correct = 0;
    for (int i = 0; i < n; ++i) {
      const float* p = probs.data() + size_t(i) * classes;
      correct += std::max_element(p, p + classes) - p == k;
    }
    *per += std::to_string(correct) + " ";
    correct_total += correct;
  }
  return double(correct_total) / double(per_class * classes);
}

// The supervised preset as shipped (1,500 steps of batch 64), one thread.
TEST(GanLearning, SupervisedGeneratorFollowsLabelAndMeanPixelValue) {
  const Config cfg = load_config("supervised", "", {});
  Exec ex = Exec::cpu(1);
  const RealData data(ex, cfg.data, cfg.batch, cfg.seed);
  check_conditional_data(cfg, data.images());
  GanSession s = make_session(cfg, data.image().with_batch(cfg.batch), cfg.batch, ex);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  // The MSE of the first steps (G near its initialization) and of the last window.
  const int start = 10, window = 100;
  for (int i = 0; i < start; ++i) gan.train_step(ex, data.source());
  const double first = gan.read_metrics(ex).loss_g;
  for (int64_t i = start + window; i < cfg.steps; ++i) gan.train_step(ex, data.source());
  gan.read_metrics(ex);
  for (int i = 0; i < window; ++i) gan.train_step(ex, data.source());
  const GanMetrics last = gan.read_metrics(ex);
  ASSERT_TRUE(last.finite());
  std::string per;
  const double accuracy = class_accuracy(ex, gan, data.images(), 100, &per);
  std::printf(
      "supervised generator: MSE %.4f over the first %d steps, %.4f over the last %d; %.3f of the "
      "images are of the requested class (per class, of 100: %s)\n",
      first, start, last.loss_g, window, accuracy, per.c_str());
  EXPECT_LT(last.loss_g, 0.5 * first) << "the MSE falls";
  EXPECT_GE(accuracy, 0.8) << "per class: " << per;
}

// ---- Through the gancu binary ---------------------------------------------------------------

const char* kShortRun = "--preset supervised --steps 20 --set train.batch=16 --set run.threads=1";

// A supervised run of 20 steps, trained once for the tests below.
class SupervisedCliOnARun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_dir_ = new std::string(temp("sup_run"));
    const auto r = run(std::string("train ") + kShortRun + " --out " + *run_dir_);
    if (r.code != 0) failure_ = new std::string(r.output);
    log_ = new std::string(r.output);
  }
  static void TearDownTestSuite() {
    delete run_dir_;
    delete failure_;
    delete log_;
  }
  void SetUp() override {
    if (failure_) FAIL() << "training the supervised run failed:\n" << *failure_;
  }
  static std::string* run_dir_;
  static std::string* failure_;
  static std::string* log_;
};
std::string* SupervisedCliOnARun::run_dir_ = nullptr;
std::string* SupervisedCliOnARun::failure_ = nullptr;
std::string* SupervisedCliOnARun::log_ = nullptr;

TEST_F(SupervisedCliOnARun, TrainingLogsTheMseAndSweepsTheMeanPixelValue) {
  EXPECT_NE(log_->find("| MSE "), std::string::npos) << *log_;
  EXPECT_EQ(log_->find("D(x)"), std::string::npos) << "no D: " << *log_;
  std::ifstream metrics(*run_dir_ + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  const auto j = nlohmann::json::parse(last);
  EXPECT_EQ(j["step"].get<int64_t>(), 20);
  EXPECT_GT(j["mse"].get<double>(), 0.0);
  EXPECT_EQ(j["mse"].get<double>(), j["loss_g"].get<double>());
  // The training grid: one row per class, grid / classes = 10 mean pixel values per row.
  const Image grid = read_png(*run_dir_ + "/samples/step_000020.png");
  EXPECT_EQ(grid.h, 10 * 30 + 2);
  EXPECT_EQ(grid.w, 10 * 30 + 2);
}

TEST_F(SupervisedCliOnARun, SweepAndMixGrids) {
  const std::string& dir = *run_dir_;
  const std::string png = temp("sup_grid") + ".png";
  expect(run("sample --run " + dir + " --sweep --out " + png), 0, {"10 rows", "by 10 mean pixel values"});
  Image g = read_png(png);
  EXPECT_EQ(g.h, 10 * 30 + 2);
  EXPECT_EQ(g.w, 10 * 30 + 2);
  expect(run("sample --run " + dir + " --sweep --class 3 --columns 6 --out " + png), 0,
         {"1 rows (labels: 3)"});
  g = read_png(png);
  EXPECT_EQ(g.h, 30 + 2);
  EXPECT_EQ(g.w, 6 * 30 + 2);
  expect(run("sample --run " + dir + " --mix 5:0.5,0:0.5 --out " + png), 0,
         {"3 rows (labels: 5; 0; 0.5 x 5 + 0.5 x 0)"});
  g = read_png(png);
  EXPECT_EQ(g.h, 3 * 30 + 2);
  // The grid's rows differ (the label reaches G): the pure 5 row against the pure 0 row.
  const size_t row_bytes = size_t(30) * size_t(g.w);
  EXPECT_FALSE(std::equal(g.pixels.begin(), g.pixels.begin() + row_bytes, g.pixels.begin() + row_bytes));
}

TEST_F(SupervisedCliOnARun, BadInputGetsAClearMessageAndExitCode) {
  const std::string& dir = *run_dir_;
  const std::string png = temp("sup_bad") + ".png";
  expect(run("sample --run " + dir + " --mix 5:0.7,0:0.7 --out " + png), 2, {"--mix", "sum to 1.4"});
  expect(run("sample --run " + dir + " --mix 5:-0.5,0:1.5 --out " + png), 2, {"--mix", ">= 0"});
  expect(run("sample --run " + dir + " --mix 11:0.5,0:0.5 --out " + png), 2,
         {"outside the model's classes 0..9"});
  expect(run("sample --run " + dir + " --sweep --class 10 --out " + png), 2, {"--class", "outside"});
  expect(run("sample --run " + dir + " --sweep --columns 1 --out " + png), 2, {"--columns"});
  expect(run("sample --run " + dir + " --sweep --mix 5:0.5,0:0.5 --out " + png), 2, {"not both"});
  expect(run("sample --run " + dir + " --columns 5 --out " + png), 2, {"--columns: goes with --sweep"});
  expect(run("sample --run " + dir + " --sweep --out " + temp("sup_bad") + ".idx"), 2, {"FILE.png"});
  // Noise means nothing to this generator: plain sampling and evaluation are refused.
  expect(run("sample --run " + dir + " --out " + png), 2, {"train.mode = supervised", "--sweep"});
  expect(run("eval --run " + dir + " --n 10"), 2, {"train.mode = supervised"});
  expect(run("compare " + dir + " " + dir), 2, {"compare", "train.mode = supervised"});
  // A GAN's checkpoint is not swept.
  const std::string plain = temp("sup_plain_run");
  expect(run("train --preset mlp --data mnist --steps 1 --set train.batch=16 --set run.threads=1 --out " +
             plain),
         0, {});
  expect(run("sample --run " + plain + " --sweep --out " + png), 2,
         {"--sweep", "not a supervised generator"});
  expect(run("sample --run " + plain + " --mix 5:0.5,0:0.5 --out " + png), 2, {"--mix", "not a supervised"});
}

TEST(SupervisedCli, ConfigErrorsNameTheKey) {
  const std::string out = temp("sup_cfg");
  const std::string base = "train --preset supervised --steps 1 --set train.batch=8 --out " + out;
  expect(run(base + " --set model.classes=0"), 2, {"model.classes", "one-hot label"});
  expect(run(base + " --set model.z_dim=100"), 2, {"model.z_dim", "mean pixel value"});
  expect(run(base + " --set 'model.discriminator=[\"flatten\", \"linear out=1\"]'"), 2,
         {"model.discriminator", "trains G alone"});
  // A data set without labels: a folder of images without class sub-folders.
  const std::string folder = temp("sup_flat");
  make_dirs(folder);
  const std::vector<uint8_t> gray(28 * 28, 100);
  for (int i = 0; i < 10; ++i) write_png(folder + "/" + std::to_string(i) + ".png", gray.data(), 28, 28, 1);
  expect(run(base + " --data " + folder), 2, {"needs class labels", "has none"});
  expect(run("bench --preset supervised --steps 1"), 2, {"train.mode = supervised"});
}

}  // namespace
}  // namespace gancu
