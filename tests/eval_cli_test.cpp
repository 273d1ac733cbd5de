// The evaluation commands end to end through the gancu binary: eval, compare and sample on a
// short real MNIST run (with evaluation during training written to metrics.jsonl), and the clear
// messages and exit codes for bad input: wrong image size for the classifier, an empty sample
// file, a run folder without checkpoints, contradictory flags.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "gancu/classifier.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;

std::string mnist_classifier_or_skip_reason(std::string* why) {
  const std::string path = default_classifier_path("mnist");
  if (path.empty()) *why = "models/mnist_classifier.safetensors is missing";
  return path;
}

TEST(EvalCli, BadInputGetsAClearMessageAndExitCode) {
  std::string why;
  const std::string classifier = mnist_classifier_or_skip_reason(&why);
  if (classifier.empty()) GTEST_SKIP() << why;

  // Flags that contradict each other or are missing: usage errors, exit 2.
  expect(run("eval"), 2, {"--run", "--samples"});
  expect(run("eval --run a --samples b.idx"), 2, {"exactly one"});
  expect(run("eval --samples b.idx"), 2, {"--classifier"});
  expect(run("eval --run a --n 1"), 2, {"--n"});
  expect(run("compare only_one"), 2, {"at least two"});

  // Images of another size than the classifier judges.
  const std::string wrong = temp("wrong_size") + ".idx";
  const std::vector<uint8_t> px(size_t(4) * 32 * 32 * 3, 128);
  write_idx_images(wrong, px.data(), 4, 32, 32, 3);
  expect(run("eval --samples " + wrong + " --classifier " + classifier), 1, {"judges 28x28x1", "32x32x3"});

  // An IDX file of zero images, and one cut short.
  const std::string empty = temp("empty") + ".idx";
  {
    // The IDX header of zero 28x28 images (gancu itself refuses to write one).
    const unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    std::ofstream(empty, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  }
  expect(run("eval --samples " + empty + " --classifier " + classifier), 1, {empty, "0 images"});
  const std::string cut = temp("cut") + ".idx";
  write_idx_images(cut, px.data(), 4, 28, 28, 1);
  {
    std::ifstream in(cut, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 100);
  }
  expect(run("eval --samples " + cut + " --classifier " + classifier), 1, {cut});

  // A classifier file that is not there, and one that is not a classifier.
  expect(run("eval --samples " + wrong + " --classifier " + temp("no_such") + ".safetensors"), 1,
         {"no_such"});
  expect(run("classifier check --classifier " + temp("no_such") + ".safetensors"), 1, {"no_such"});

  // A run folder without checkpoints, and one that does not exist.
  const std::string empty_run = temp("eval_empty_run");
  make_dirs(empty_run + "/checkpoints");
  expect(run("eval --run " + empty_run), 1, {"no checkpoints"});
  expect(run("eval --run " + temp("nothing_here")), 1, {"nothing_here"});
  expect(run("compare " + empty_run + " " + empty_run), 1, {"no checkpoints"});
}

TEST(EvalCli, PointGeneratorsSampleToCsvAndEvaluateByMode) {
  const std::string dir = temp("ring8_run");
  expect(run("train --preset ring8 --backend cpu --steps 10 --out " + dir), 0, {"step 10/10"});
  const std::string csv = temp("points") + ".csv";
  expect(run("sample --run " + dir + " --n 5 --out " + csv), 0, {"wrote 5 points"});
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "x,y");
  int rows = 0;
  for (float x, y; std::getline(in, line); ++rows)
    EXPECT_EQ(std::sscanf(line.c_str(), "%f,%f", &x, &y), 2) << line;
  EXPECT_EQ(rows, 5);
  expect(run("sample --run " + dir + " --n 5 --out " + temp("points") + ".png"), 2, {"FILE.csv"});
  const auto r = run("eval --run " + dir + " --n 200 --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("per_mode").size(), 8u);
  EXPECT_EQ(j.at("eval/modes_total").get<int>(), 8);
  EXPECT_TRUE(j.contains("eval/high_quality"));
}

// One short MNIST run serves the happy paths of train (evaluation during training), eval, sample
// and compare. 40 steps of the mlp preset take a few seconds on two cores.
class EvalCliOnARun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (mnist_classifier_or_skip_reason(&why).empty()) {
      skip_ = why;
      return;
    }
    try {
      (void)load_dataset("mnist", Split::Test);
    } catch (const std::exception& e) {
      skip_ = std::string("MNIST is not here: ") + e.what();
      return;
    }
    dir_ = temp("eval_run");
    train_ = run("train --preset mlp --backend cpu --data mnist --batch 64 --steps 40 --out " + dir_ +
                 " --set log.log_every=20 --set log.eval_every=20 --set eval.samples=300"
                 " --set log.sample_every=40 --set log.checkpoint_every=40");
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_EQ(train_.code, 0) << train_.output;
  }
  static std::string skip_, dir_;
  static testing_cli::Result train_;
};
std::string EvalCliOnARun::skip_, EvalCliOnARun::dir_;
testing_cli::Result EvalCliOnARun::train_;

TEST_F(EvalCliOnARun, TrainingWritesEvaluationsToMetricsJsonl) {
  // The progress line shows the evaluation, and metrics.jsonl holds it at steps 20 and 40.
  EXPECT_NE(train_.output.find("modes"), std::string::npos) << train_.output;
  std::ifstream in(dir_ + "/metrics.jsonl");
  ASSERT_TRUE(in) << dir_ + "/metrics.jsonl";
  std::vector<int64_t> eval_steps;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("eval/modes")) continue;
    eval_steps.push_back(j.at("step").get<int64_t>());
    EXPECT_GE(j.at("eval/modes").get<int>(), 1);
    EXPECT_LE(j.at("eval/modes").get<int>(), 10);
    for (const char* key : {"eval/fid_classifier", "eval/precision", "eval/recall", "eval/score"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
  }
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{20, 40}));
}

TEST_F(EvalCliOnARun, EvalPrintsEveryNumberAsTableAndJson) {
  expect(run("eval --run " + dir_ + " --n 400 --backend cpu"), 0,
         {"modes covered", "of 10", "KL", "score", "FID (classifier)", "not comparable to Inception FID",
          "precision/recall", "density/coverage", "class histogram"});
  const auto r = run("eval --run " + dir_ + " --n 400 --backend cpu --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("samples").get<int64_t>(), 400);
  int64_t total = 0;
  for (const auto& c : j.at("histogram")) total += c.get<int64_t>();
  EXPECT_EQ(total, 400);
  for (const char* key : {"eval/modes", "eval/kl_uniform", "eval/score", "eval/fid_classifier",
                          "eval/precision", "eval/recall", "eval/f1", "eval/density", "eval/coverage"})
    EXPECT_TRUE(j.contains(key)) << key << " missing in " << r.output;
}

TEST_F(EvalCliOnARun, SampledIdxEvaluatesLikeTheRun) {
  const std::string idx = temp("eval_samples") + ".idx";
  expect(run("sample --run " + dir_ + " --n 400 --out " + idx), 0, {"wrote 400 samples"});
  const auto from_file = run("eval --samples " + idx + " --classifier " + default_classifier_path("mnist") +
                             " --backend cpu --json");
  const auto from_run = run("eval --run " + dir_ + " --n 400 --backend cpu --json");
  ASSERT_EQ(from_file.code, 0) << from_file.output;
  ASSERT_EQ(from_run.code, 0) << from_run.output;
  // The same generator, noise seed and count: the same samples, so the same histogram.
  const auto a = nlohmann::json::parse(from_file.output.substr(from_file.output.find('{')));
  const auto b = nlohmann::json::parse(from_run.output.substr(from_run.output.find('{')));
  EXPECT_EQ(a.at("histogram"), b.at("histogram"));
  // A CSV is for point generators only.
  expect(run("sample --run " + dir_ + " --n 4 --out " + temp("x") + ".csv"), 2, {"2-d points"});
}

// Two runs of the same preset from different seeds, and the first again: three columns (a run
// given twice keeps its own column, labelled "#2"), the repeated run's classes equal the first's
// under the same noise, and the other seed's differ somewhere.
TEST_F(EvalCliOnARun, CompareKeepsAColumnPerRunInTheOrderGiven) {
  const std::string other = temp("eval_run_seed2");
  expect(run("train --preset mlp --backend cpu --data mnist --batch 64 --steps 40 --out " + other +
             " --set train.seed=2 --set log.eval_every=0 --set log.sample_every=40"
             " --set log.checkpoint_every=40"),
         0, {});
  const std::string out = temp("compare");
  const auto r =
      run("compare " + dir_ + " " + other + " " + dir_ + " --sets 2 --per-set 16 --backend cpu --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::vector<std::string> labels{dir_, other, dir_ + " #2"};
  // The printed table: one column per run, each labelled.
  const std::string header = "| set | " + labels[0] + " | " + labels[1] + " | " + labels[2] + " |";
  EXPECT_NE(r.output.find(header), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| mean |"), std::string::npos) << r.output;
  EXPECT_TRUE(file_exists(out + "/set_00.png"));
  EXPECT_TRUE(file_exists(out + "/set_01.png"));
  EXPECT_TRUE(file_exists(out + "/noise.safetensors"));
  std::ifstream in(out + "/table.json");
  std::stringstream text;
  text << in.rdbuf();
  const auto table = nlohmann::json::parse(text.str());
  ASSERT_EQ(table.size(), 2u);
  bool seeds_differ = false;
  for (const auto& row : table) {
    const auto& cols = row.at("runs");
    ASSERT_EQ(cols.size(), 3u) << row.dump();
    for (size_t g = 0; g < 3; ++g) {
      EXPECT_EQ(cols[g].at("run").get<std::string>(), labels[g]);
      EXPECT_EQ(cols[g].at("path").get<std::string>(), g == 1 ? other : dir_);
      EXPECT_GE(cols[g].at("distinct_classes").get<int>(), 1);
      EXPECT_LE(cols[g].at("distinct_classes").get<int>(), 10);
      EXPECT_EQ(cols[g].at("classes").size(), 16u);
    }
    // The same generator under the same noise draws the same classes.
    EXPECT_EQ(cols[0].at("classes"), cols[2].at("classes")) << row.dump();
    seeds_differ = seeds_differ || cols[0].at("classes") != cols[1].at("classes");
  }
  EXPECT_TRUE(seeds_differ) << "two generators trained from different seeds drew the same 32 classes: "
                            << table.dump();
}

// Two different models under one backend: each loaded GAN keeps its own workspace (dcgan's
// convolutions need one, mlp's none), whichever was loaded last.
TEST_F(EvalCliOnARun, CompareRunsOfDifferentModels) {
  const std::string dcgan = temp("compare_dcgan");
  expect(run("train --preset dcgan --backend cpu --data mnist --batch 16 --steps 2 --out " + dcgan +
             " --set log.sample_every=0 --set log.eval_every=0"),
         0, {});
  const std::string out = temp("compare_models");
  expect(run("compare " + dcgan + " " + dir_ + " --sets 1 --per-set 3 --backend cpu --out " + out), 0,
         {"distinct classes"});
  EXPECT_TRUE(file_exists(out + "/set_00.png"));
}

}  // namespace
}  // namespace gancu
