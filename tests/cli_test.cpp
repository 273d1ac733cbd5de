// The gancu command as a user meets it: exit codes (0 ok, 1 runtime error, 2 usage error) and
// messages that name the flag, the key or the file.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cli_test_util.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/fileutil.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;

TEST(Cli, HelpAndInfoSucceed) {
  expect(run("--help"), 0, {"train", "sample", "bench", "info"});
  expect(run("train --help"), 0, {"--preset", "--steps", "--resume", "--set"});
  expect(run("sample --help"), 0, {"--checkpoint", "--n"});
  expect(run("bench --help"), 0, {"--json", "--batch"});
  expect(run("info"), 0, {"gancu", "cpu", "cuda", "dcgan"});
}

TEST(Cli, UsageErrorsExitTwoAndNameTheFlag) {
  expect(run(""), 2, {"subcommand"});
  expect(run("train --preset dcgan --frobnicate 3"), 2, {"--frobnicate"});
  expect(run("train --preset nosuch"), 2, {"--preset", "nosuch"});
  expect(run("train --preset dcgan --batch 0"), 2, {"--batch", "got 0"});
  expect(run("train --preset dcgan --steps -5"), 2, {"--steps"});
  expect(run("train --preset dcgan --set optim.g.lr=-1"), 2, {"optim.g.lr"});
  expect(run("train --preset dcgan --set train.nonsense=1"), 2, {"train.nonsense"});
  expect(run("train --preset dcgan --threads -2"), 2, {"--threads"});
  expect(run("train --preset dcgan --backend tpu"), 2, {"--backend", "tpu"});
  expect(run("train"), 2, {"--preset"});
  expect(run("sample --n 4 --out x.idx"), 2, {"--run", "--checkpoint"});
  expect(run("bench --preset mlp --steps 0"), 2, {"--steps"});
}

TEST(Cli, RuntimeErrorsExitOneAndNameTheFile) {
  std::string why;
  if (!cuda_available(&why))
    expect(run("train --preset mlp --backend cuda --steps 1"), 1, {"--backend cuda"});
  const std::string bad = temp("bad_data");
  make_dirs(bad);
  {
    std::ofstream f(bad + "/train-images-idx3-ubyte");
    f << "not an idx file at all";
  }
  expect(run("train --preset mlp --steps 1 --backend cpu --data " + bad + " --out " + temp("r")), 1,
         {"train-images-idx3-ubyte"});
  expect(run("sample --run " + temp("nothing_here") + " --out x.idx"), 1, {"nothing_here"});
  const std::string empty_run = temp("empty_run");
  make_dirs(empty_run + "/checkpoints");
  expect(run("sample --run " + empty_run + " --out x.idx"), 1, {"no checkpoints"});
  expect(run("train --resume --out " + temp("not_a_run")), 1, {"config.toml"});
}

TEST(Cli, TrainThenSampleOnSyntheticData) {
  const std::string dir = temp("run");
  const std::string model =
      " --set model.z_dim=8"
      " --set 'model.generator=[\"linear out=64\", \"tanh\", \"reshape h=8 w=8 c=1\"]'"
      " --set 'model.discriminator=[\"flatten\", \"linear out=16\", \"lrelu\", \"linear out=1\"]'";
  expect(run("train --preset mlp --backend cpu --data synthetic:8x8x1:256 --batch 16 --steps 4 --out " + dir +
             model + " --set log.log_every=2"),
         0, {"step 2/4", "step 4/4", "img/s", "loss D", "samples/step_000004.png"});
  EXPECT_TRUE(file_exists(dir + "/checkpoints/step_00000004.safetensors"));
  const std::string idx = temp("samples") + ".idx";
  expect(run("sample --run " + dir + " --n 10 --out " + idx), 0, {"wrote 10 samples"});
  const Dataset d = read_idx_images(idx);
  EXPECT_EQ(d.count, 10);
  EXPECT_EQ(d.h, 8);
  const std::string png_dir = temp("pngs");
  expect(run("sample --checkpoint " + dir + "/checkpoints/step_00000004.safetensors --n 3 --out " + png_dir),
         0, {});
  EXPECT_TRUE(file_exists(png_dir + "/000002.png"));
  // Resume past the end: nothing to do, exit 0; with more steps it continues.
  expect(run("train --resume --out " + dir + " --steps 6"), 0, {"resuming", "step 6/6"});
}

TEST(Cli, BenchPrintsJson) {
  expect(run("bench --preset mlp --backend cpu --batch 8 --steps 2 --warmup 1 --threads 1 --json"), 0,
         {"\"impl\":\"gancu\"", "\"images_per_s\"", "\"phases_ms\"", "\"batch\":8"});
}

}  // namespace
}  // namespace gancu
