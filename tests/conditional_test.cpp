// Conditional models end to end on the CPU: a short conditional GAN on real Fashion-MNIST whose
// samples of each class the shipped classifier assigns to that class well above chance (what the
// labels must achieve: with labels not reaching D, or shuffled, G has no reason to follow them and
// the accuracy stays near 10%); and through the gancu binary, --class sampling, grids with one row
// per class, eval's class accuracy, and the bad input of conditional models (a data set without
// labels, labels beyond the model's classes, a 2-d mixture, --class out of range or on an
// unconditional checkpoint), each a clear message with exit code 2.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli_test_util.h"
#include "gancu/check.h"
#include "gancu/classifier.h"
#include "gancu/comm.h"
#include "gancu/config.h"
#include "gancu/evaluation.h"
#include "gancu/fileutil.h"
#include "gancu/gan.h"
#include "gancu/image_io.h"
#include "gancu/session.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;

// A small conditional MLP GAN (the cgan preset's data, labels and objective; MLP networks so that
// it trains in seconds on a CPU): G reads [z, one-hot label]; D is a projection discriminator,
// linear(phi) + <E[y], phi> on its hidden features phi. (With the label joined to D's input
// instead, this MLP follows the labels only after thousands of steps: 0.12 of the samples of the
// requested class after 4,000, 0.19 after 6,000.)
const char* kMlpGenerator =
    R"(["concat in=input,label", "linear out=256", "lrelu", "linear out=784", "tanh", "reshape h=28 w=28 c=1"])";
const char* kMlpDiscriminator =
    R"(["flatten", "linear out=256", "lrelu name=phi", "linear out=1 name=score", "project in=phi,label name=p", )"
    R"("add in=score,p"])";

// The real batch's labels are those of its images, in a whole batch and in a data-parallel
// rank's rows of it: images whose every pixel is 20 x their label.
TEST(ConditionalData, LabelsAreGatheredWithTheirImages) {
  Dataset data = make_synthetic_dataset(4, 4, 1, 100, 5);
  for (int64_t i = 0; i < data.count; ++i)
    std::fill(data.images.begin() + i * 16, data.images.begin() + (i + 1) * 16,
              uint8_t(20 * data.labels[size_t(i)]));
  Exec ex = Exec::cpu(1);
  for (const Shard shard : {Shard{0, 16, 16}, Shard{8, 8, 16}}) {
    const DeviceDataset device(ex, data, shard, 3);
    std::vector<float> real(size_t(shard.batch) * 16);
    std::vector<int32_t> classes(size_t(shard.batch), -1);
    std::set<int32_t> seen;
    for (int64_t step = 0; step < 9; ++step) {  // past the end of the first epoch (6 batches)
      device.source()(ex, real.data(), classes.data(), &step);
      for (int i = 0; i < shard.batch; ++i) {
        // gather_batch maps pixel p to p / 127.5 - 1.
        EXPECT_NEAR((real[size_t(i) * 16] + 1.0f) * 127.5f, 20.0f * float(classes[size_t(i)]), 1e-3)
            << "step " << step << " row " << i;
        seen.insert(classes[size_t(i)]);
      }
    }
    EXPECT_EQ(seen.size(), 10u);
  }
}

TEST(GanLearning, ConditionalGanDrawsTheRequestedClasses) {
  // 1,500 steps of batch 64 (1.6 epochs), one thread, about 25 s. Chance is 10%.
  const int batch = 64, steps = 1500;
  const Config cfg = load_config("cgan", "",
                                 {{"model.z_dim", "32", "test"},
                                  {"model.generator", kMlpGenerator, "test"},
                                  {"model.discriminator", kMlpDiscriminator, "test"},
                                  {"train.batch", std::to_string(batch), "test"}});
  Exec ex = Exec::cpu(1);
  const RealData data(ex, cfg.data, batch, cfg.seed);
  check_conditional_data(cfg, data.images());
  GanSession s = make_session(cfg, data.image().with_batch(batch), batch, ex);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  for (int i = 0; i < steps; ++i) gan.train_step(ex, data.source());
  ASSERT_TRUE(gan.read_metrics(ex).finite());

  const std::string path = default_classifier_path("fashion-mnist");
  ASSERT_FALSE(path.empty()) << "models/fashion-mnist_classifier.safetensors is missing";
  const auto classifier = Classifier::load(ex, path, 100);
  const int per_class = 100, classes = 10;
  int correct_total = 0;
  std::string per;
  for (int k = 0; k < classes; ++k) {
    const std::vector<float> images =
        draw_samples(ex, gan, per_class, 7, 1, std::vector<int32_t>(size_t(per_class), k));
    const std::vector<uint8_t> pixels = float_to_u8(images);
    std::vector<float> probs(size_t(per_class) * classes);
    classifier->evaluate_u8(pixels.data(), per_class, probs.data(), nullptr);
    int correct = 0;
    for (int i = 0; i < per_class; ++i) {
      const float* p = probs.data() + size_t(i) * classes;
      correct += std::max_element(p, p + classes) - p == k;
    }
    per += std::to_string(correct) + " ";
    correct_total += correct;
  }
  const double accuracy = double(correct_total) / (per_class * classes);
  std::printf("conditional GAN: %.3f of the samples are of the requested class (per class, of 100: %s)\n",
              accuracy, per.c_str());
  EXPECT_GE(accuracy, 0.35) << "per class: " << per;
}

// ---- Through the gancu binary ---------------------------------------------------------------

std::string conditional_mlp_flags() {
  return detail::concat(
      "--preset cgan --data mnist --set train.batch=16 --set model.z_dim=8 --set run.threads=1 ",
      "--set 'model.generator=", kMlpGenerator, "' --set 'model.discriminator=", kMlpDiscriminator, "'");
}

TEST(ConditionalCli, BadInputGetsAClearMessageAndExitCode) {
  // A folder of images without class sub-folders: no labels.
  const std::string folder = temp("cond_flat");
  make_dirs(folder);
  const std::vector<uint8_t> gray(28 * 28, 100);
  for (int i = 0; i < 20; ++i) write_png(folder + "/" + std::to_string(i) + ".png", gray.data(), 28, 28, 1);
  const std::string out = temp("cond_bad");
  expect(run("train --preset cgan --steps 1 --batch 8 --data " + folder + " --out " + out), 2,
         {"model.classes = 10", "needs class labels", "has none"});
  expect(run("train --preset cgan --steps 1 --data ring8 --out " + out), 2, {"2-d mixture"});
  expect(run("train --preset cgan --steps 1 --data mnist --set model.classes=5 --out " + out), 2,
         {"label 9", "outside the model's classes 0..4"});
  // A layer that reads the labels of an unconditional model: the known names are listed.
  expect(run("train --preset cgan --steps 1 --data mnist --set model.classes=0 --out " + out), 2,
         {"'label'", "not an input"});
  expect(run("train --preset cgan --steps 1 --data mnist --set model.classes=-1 --out " + out), 2,
         {"model.classes"});
}

// The class accuracy in eval's table and JSON: overall, per requested class, "-" for a class
// that was not requested.
TEST(ConditionalEval, ResultShowsClassAccuracyOverallAndPerClass) {
  EvalResult r;
  r.images = true;
  r.samples = 4;
  r.classes_total = 3;
  r.classes.histogram = {2, 1, 1};
  r.conditional = true;
  r.class_accuracy = 0.75;
  r.class_accuracy_per_class = {1.0, 0.5, -1.0};
  const nlohmann::json j = r.json();
  EXPECT_EQ(j["eval/class_accuracy"].get<double>(), 0.75);
  EXPECT_EQ(j["eval/class_accuracy_1"].get<double>(), 0.5);
  EXPECT_FALSE(j.contains("eval/class_accuracy_2")) << "not requested";
  const std::string table = r.table();
  EXPECT_NE(table.find("class accuracy     0.750"), std::string::npos) << table;
  EXPECT_NE(table.find("per class        1.00 0.50 - "), std::string::npos) << table;
  r.conditional = false;
  EXPECT_FALSE(r.json().contains("eval/class_accuracy"));
  EXPECT_EQ(r.table().find("class accuracy"), std::string::npos);
}

// A conditional run of two steps, trained once for the tests below.
class ConditionalCliOnARun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_dir_ = new std::string(temp("cond_run"));
    const auto r = run("train " + conditional_mlp_flags() + " --steps 2 --out " + *run_dir_);
    if (r.code != 0) failure_ = new std::string(r.output);
  }
  static void TearDownTestSuite() {
    delete run_dir_;
    delete failure_;
  }
  void SetUp() override {
    if (failure_) FAIL() << "training the conditional run failed:\n" << *failure_;
  }
  static std::string* run_dir_;
  static std::string* failure_;
};
std::string* ConditionalCliOnARun::run_dir_ = nullptr;
std::string* ConditionalCliOnARun::failure_ = nullptr;

TEST_F(ConditionalCliOnARun, SamplesByClassAndGridsByRow) {
  const std::string& cond = *run_dir_;
  // The training grid has one row per class: 10 rows of ceil(100 / 10) images.
  const Image grid = read_png(cond + "/samples/step_000002.png");
  EXPECT_EQ(grid.h, 10 * 30 + 2);
  EXPECT_EQ(grid.w, 10 * 30 + 2);

  const std::string idx = temp("cond_k3") + ".idx";
  expect(run("sample --run " + cond + " --class 3 --n 5 --out " + idx), 0, {"of class 3"});
  EXPECT_EQ(read_idx_images(idx).count, 5);
  expect(run("sample --run " + cond + " --n 12 --out " + idx), 0, {"classes 0..9 in turn"});
  const std::string png = temp("cond_grid") + ".png";
  expect(run("sample --run " + cond + " --n 20 --out " + png), 0, {"one row of 2 per class 0..9"});
  const Image rows = read_png(png);
  EXPECT_EQ(rows.h, 10 * 30 + 2) << "ten rows";
  EXPECT_EQ(rows.w, 2 * 30 + 2) << "two columns";
  expect(run("sample --run " + cond + " --class 10 --out " + idx), 2,
         {"--class", "outside the model's classes 0..9"});
  expect(run("sample --run " + cond + " --class -3 --out " + idx), 2, {"outside the model's classes 0..9"});

  const std::string plain = temp("plain_run");
  expect(run("train --preset mlp --data mnist --steps 1 --set train.batch=16 --set run.threads=1 --out " +
             plain),
         0, {});
  expect(run("sample --run " + plain + " --class 1 --out " + idx), 2, {"--class", "unconditional"});
}

// Evaluation featurizes the classifier's held-out reference images: left out of the sanitized
// suite for its cost, as EvalCliOnARun's evaluations are.
TEST_F(ConditionalCliOnARun, EvalReportsClassAccuracy) {
  const auto ev = run("eval --run " + *run_dir_ + " --n 60 --json");
  ASSERT_EQ(ev.code, 0) << ev.output;
  const auto j = nlohmann::json::parse(ev.output.substr(ev.output.find('{')));
  ASSERT_TRUE(j.contains("eval/class_accuracy")) << ev.output;
  EXPECT_GE(j["eval/class_accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["eval/class_accuracy"].get<double>(), 1.0);
  EXPECT_TRUE(j.contains("eval/class_accuracy_9")) << "per class";
}

}  // namespace
}  // namespace gancu
