// Data-parallel training under mpirun on the CPU (docs/data_parallel.md): two ranks at global
// batch B follow one process at batch B; resume across rank counts; rank 0 alone writes; a rank
// that fails or dies ends the whole job with a message, within the collective time-out.
//
// Each test starts `mpirun -np 2 gancu ...` (as root: --allow-run-as-root; --oversubscribe so that
// two ranks run on a one-core machine too). Needs Open MPI's mpirun (tools/setup.sh installs it).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#if GANCU_HAVE_NCCL
#include <cuda_runtime.h>
#endif

#include "cli_test_util.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/safetensors.h"

namespace gancu {
namespace {

using testing_cli::Result;

// `mpirun -np N gancu ARGS`, one thread per rank. The MCA settings keep Open MPI quiet and
// working in containers: shared memory without the kernel's cross-memory attach, no core binding.
std::string mpirun_command(int ranks, const std::string& args) {
  return "env OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_hwloc_base_binding_policy=none mpirun "
         "--allow-run-as-root --oversubscribe -np " +
         std::to_string(ranks) + " " + GANCU_BINARY + " " + args;
}

Result gancu_ranks(int ranks, const std::string& args) {
  return ranks == 0 ? testing_cli::run(args) : testing_cli::run_command(mpirun_command(ranks, args));
}

// How far apart two checkpoints are: for each float tensor, the norm of the difference relative
// to the tensor's norm, and the worst of these; integer tensors (step counters) must be equal.
// Norm-wise rather than element by element: one LeakyReLU unit whose input sits at its kink for one
// sample takes the other slope when the batch is summed in another order, and Adam then moves that
// unit's row apart by a share of a step (1.9e-4 of the largest weight in one element with one CPU's
// OpenBLAS kernels, none with another's), while a reduction that is wrong moves every row.
double worst_relative_difference(const std::string& a_path, const std::string& b_path) {
  const SafeTensors a = read_safetensors(a_path), b = read_safetensors(b_path);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  double worst = 0;
  for (const auto& [name, ta] : a.tensors) {
    const auto it = b.tensors.find(name);
    if (it == b.tensors.end()) {
      ADD_FAILURE() << name << " missing from " << b_path;
      continue;
    }
    if (ta.dtype == "F32") {
      const std::vector<float> x = tensor_values<float>(ta, name), y = tensor_values<float>(it->second, name);
      EXPECT_EQ(x.size(), y.size()) << name;
      double norm = 0, diff = 0;
      for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        norm += double(x[i]) * x[i];
        diff += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      }
      worst = std::max(worst, std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12));
    } else {
      EXPECT_EQ(ta.bytes, it->second.bytes) << name;
    }
  }
  return worst;
}

std::string common_flags(const std::string& out) {
  return "--set run.threads=1 --set log.log_every=5 --set log.sample_every=0 --set log.checkpoint_every=0 "
         "--out " +
         out;
}

// A generator without batch norm for 28x28 images: batch statistics are per rank (as in PyTorch's
// DDP), so only a model without them can follow one process exactly.
const char* kMlpWithoutBatchNorm =
    "--set 'model.generator=[\"linear out=128\", \"lrelu slope=0.2\", \"linear out=784\", \"tanh\", "
    "\"reshape h=28 w=28 c=1\"]' --set 'model.discriminator=[\"flatten\", \"linear out=128\", \"lrelu "
    "slope=0.2\", \"linear out=1\"]'";

// Adam divides each step by the root of its second moment, which magnifies the last-bit
// differences of a gradient averaged in another order: after 20 steps the worst tensor stays
// within 3.3e-5 of its norm (the ring's D optimizer state). A rank whose gradient is not averaged,
// or a reduction that leaves out one layer, gives 0.045 to 0.33 (measured with those bugs planted).
constexpr double kTrajectoryTolerance = 1e-3;

// Trains `args` in one process and in two ranks (into folders named after `name`) and expects the
// two runs' last checkpoints to agree within kTrajectoryTolerance; returns the two ranks' output.
std::string expect_two_ranks_follow_one_process(const std::string& name, const std::string& args) {
  const std::string one = testing_cli::temp(name + "_one"), two = testing_cli::temp(name + "_two");
  const Result r1 = gancu_ranks(0, args + common_flags(one));
  EXPECT_EQ(r1.code, 0) << r1.output;
  const Result r2 = gancu_ranks(2, args + common_flags(two));
  EXPECT_EQ(r2.code, 0) << r2.output;
  if (r1.code != 0 || r2.code != 0) return r2.output;
  const double worst = worst_relative_difference(latest_checkpoint(one), latest_checkpoint(two));
  EXPECT_LT(worst, kTrajectoryTolerance);
  ::testing::Test::RecordProperty("worst_relative_difference", std::to_string(worst));
  return r2.output;
}

TEST(DataParallel, TwoRanksFollowOneProcessOnTheRing) {
  const std::string out = expect_two_ranks_follow_one_process(
      "dp_ring", "train --preset ring8 --set train.steps=20 --set train.batch=64 ");
  EXPECT_NE(out.find("data-parallel over MPI"), std::string::npos) << out;
  EXPECT_NE(out.find("32 of the global batch of 64 per rank"), std::string::npos) << out;
}

TEST(DataParallel, TwoRanksFollowOneProcessOnFashionMnist) {
  expect_two_ranks_follow_one_process(
      "dp_fmnist",
      std::string("train --preset mlp --data fashion-mnist --set train.steps=20 --set train.batch=32 ") +
          kMlpWithoutBatchNorm + " ");
}

// A conditional model: each rank gathers the labels of its rows of the real batch, and reads its
// rows of the fake classes drawn for the whole global batch (like the noise), so the two ranks
// follow one process (docs/conditional/cgan_mlp.toml: the cgan preset with MLP networks, no
// batch norm, a projection discriminator).
TEST(DataParallel, TwoRanksFollowOneProcessWithClassLabels) {
  expect_two_ranks_follow_one_process("dp_cond",
                                      std::string("train --preset cgan --config ") + GANCU_SOURCE_DIR +
                                          "/docs/conditional/cgan_mlp.toml --set train.steps=20 --set "
                                          "train.batch=32 ");
}

// The supervised generator (no D): each rank takes the mean pixel values and labels of its rows of
// the real batch, and the MSE's gradients are averaged over the ranks.
TEST(DataParallel, TwoRanksFollowOneProcessAsASupervisedGenerator) {
  expect_two_ranks_follow_one_process("dp_sup",
                                      "train --preset supervised --set train.steps=20 --set train.batch=32 ");
}

// The mlp preset's generator has batch norm: with model.sync_bn its statistics are the global
// batch's on every rank, and the two ranks follow one process; without it each rank normalizes by
// its own half of the batch, and they do not (which shows that the comparison can tell).
TEST(DataParallel, SynchronizedBatchNormFollowsOneProcess) {
  const std::string one = testing_cli::temp("dp_bn_one"), synced = testing_cli::temp("dp_bn_synced"),
                    per_rank = testing_cli::temp("dp_bn_per_rank");
  const std::string args =
      "train --preset mlp --data fashion-mnist --set train.steps=20 --set train.batch=32 ";
  const Result r1 = gancu_ranks(0, args + common_flags(one));
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = gancu_ranks(2, args + "--set model.sync_bn=true " + common_flags(synced));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_NE(r2.output.find("batch norm synchronized over the ranks"), std::string::npos) << r2.output;
  const Result r3 = gancu_ranks(2, args + common_flags(per_rank));
  ASSERT_EQ(r3.code, 0) << r3.output;
  // Synchronized: 5.6e-6 measured after 20 steps; per-rank statistics move a tensor by ~1.
  EXPECT_LT(worst_relative_difference(latest_checkpoint(one), latest_checkpoint(synced)),
            kTrajectoryTolerance);
  EXPECT_GT(worst_relative_difference(latest_checkpoint(one), latest_checkpoint(per_rank)), 0.1);
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {

int count_files_starting(const std::string& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) ++n;
  return n;
}

uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

TEST(DataParallel, OnlyRankZeroWritesTheRunFolder) {
  const std::string out = testing_cli::temp("dp_writer");
  const Result r = gancu_ranks(2,
                               "train --preset ring8 --set train.steps=10 --set log.log_every=5 --set "
                               "log.sample_every=5 --set log.checkpoint_every=5 --set run.threads=1 --out " +
                                   out);
  ASSERT_EQ(r.code, 0) << r.output;
  // Each writer would add its own TensorBoard file and its own progress lines and summary.
  EXPECT_EQ(count_files_starting(out, "events.out.tfevents"), 1);
  // Counted anywhere in the output: mpirun forwards stdout and stderr through separate pipes, so a
  // line of one may land in the middle of a line of the other.
  const auto occurrences = [&](const std::string& what) {
    int n = 0;
    for (size_t at = r.output.find(what); at != std::string::npos; at = r.output.find(what, at + 1)) ++n;
    return n;
  };
  const int summaries = occurrences("run folder:"), progress_at_10 = occurrences("step 10/10 |");
  EXPECT_EQ(summaries, 1) << r.output;
  EXPECT_EQ(progress_at_10, 1) << r.output;
  // metrics.jsonl: one line per log step, not one per rank.
  std::ifstream metrics(out + "/metrics.jsonl");
  int metric_lines = 0;
  for (std::string line; std::getline(metrics, line);) ++metric_lines;
  EXPECT_EQ(metric_lines, 2);
}

// A run saved by 2 ranks resumes in 1 process (and the other way round), and ends where the
// uninterrupted one-process run ends.
TEST(DataParallel, ResumesWithAnotherNumberOfRanks) {
  const std::string straight = testing_cli::temp("dp_straight"), two_then_one = testing_cli::temp("dp_2to1"),
                    one_then_two = testing_cli::temp("dp_1to2");
  const std::string args =
      "train --preset ring8 --set train.batch=64 --set run.threads=1 --set log.log_every=5 ";
  ASSERT_EQ(gancu_ranks(0, args + "--set train.steps=20 --out " + straight).code, 0);

  Result r = gancu_ranks(2, args + "--set train.steps=10 --out " + two_then_one);
  ASSERT_EQ(r.code, 0) << r.output;
  r = gancu_ranks(0, "train --resume --set train.steps=20 --out " + two_then_one);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming"), std::string::npos) << r.output;

  r = gancu_ranks(0, args + "--set train.steps=10 --out " + one_then_two);
  ASSERT_EQ(r.code, 0) << r.output;
  r = gancu_ranks(2, "train --resume --set train.steps=20 --out " + one_then_two);
  ASSERT_EQ(r.code, 0) << r.output;

  EXPECT_LT(worst_relative_difference(latest_checkpoint(straight), latest_checkpoint(two_then_one)),
            kTrajectoryTolerance);
  EXPECT_LT(worst_relative_difference(latest_checkpoint(straight), latest_checkpoint(one_then_two)),
            kTrajectoryTolerance);
}

// A rank killed in the middle of training: the job ends (no hang) with a non-zero status, and
// mpirun names the rank and the signal.
TEST(DataParallel, AKilledRankEndsTheJob) {
  const std::string out = testing_cli::temp("dp_killed");
  const std::string log = out + ".log";
  // exec: the child's pid is mpirun's, and the ranks are mpirun's children.
  const std::string cmd =
      "exec " +
      mpirun_command(2,
                     "train --preset ring8 --set train.steps=100000000 --set run.threads=1 "
                     "--set log.log_every=10 --out " +
                         out) +
      " >'" + log + "' 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  // Training has begun once metrics.jsonl has a line.
  const auto started = std::chrono::steady_clock::now();
  while (file_size_or_zero(out + "/metrics.jsonl") == 0 &&
         std::chrono::steady_clock::now() - started < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GT(file_size_or_zero(out + "/metrics.jsonl"), 0u) << "training did not start";
  // The ranks are mpirun's children, started in rank order: the newest is rank 1.
  const Result ranks = testing_cli::run_command("pgrep -P " + std::to_string(pid) + " | sort -n | tail -1");
  const int victim = std::atoi(ranks.output.c_str());
  ASSERT_GT(victim, 0) << ranks.output;
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  int status = 0;
  const auto killed = std::chrono::steady_clock::now();
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - killed < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the job still ran 60 s after one of its ranks was killed";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("rank 1"), std::string::npos) << text;
  EXPECT_NE(text.find("signal 9"), std::string::npos) << text;
}

// A rank that waits longer than run.collective_timeout_s for the others names the collective and
// ends the job. Here rank 0 evaluates (alone) for longer than the time-out allows: a million
// samples, five times the 200,000 that an AVX-512 core evaluated within 0.3 s in half the runs,
// against a time-out of 0.1 s.
TEST(DataParallel, ACollectiveThatWaitsPastTheTimeOutEndsTheJob) {
  const std::string out = testing_cli::temp("dp_timeout");
  const Result r = gancu_ranks(2,
                               "train --preset ring8 --set train.steps=40 --set run.threads=1 --set "
                               "log.log_every=20 --set log.eval_every=20 --set eval.samples=1000000 --set "
                               "run.collective_timeout_s=0.1 --out " +
                                   out);
  EXPECT_NE(r.code, 0) << r.output;
  // Rank 1 times out first; rank 0 may too, once rank 1 is gone.
  EXPECT_NE(r.output.find(" of 2: error: waited"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("run.collective_timeout_s"), std::string::npos) << r.output;
}

TEST(DataParallel, AnErrorOnOneRankEndsTheJobWithItsMessage) {
  // Rank 0 alone writes, so only rank 0 meets a run folder that cannot be created.
  const Result r = gancu_ranks(2,
                               "train --preset ring8 --set train.steps=10 --set run.threads=1 --out "
                               "/dev/null/run");
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2: error:"), std::string::npos) << r.output;
}

TEST(DataParallel, RefusesWhatCannotBeSplitOverRanks) {
  const std::string out = testing_cli::temp("dp_refused");
  Result r = gancu_ranks(2, "train --preset ring8 --set train.batch=63 --set run.threads=1 --out " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("does not split over 2 ranks"), std::string::npos) << r.output;
  r = gancu_ranks(2, "train --preset began --data fashion-mnist --set run.threads=1 --out " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("train it in one process"), std::string::npos) << r.output;
  r = gancu_ranks(2, "sample --run " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("runs in one process"), std::string::npos) << r.output;
}

// The same assertions on GPUs: NCCL's all-reduces inside the captured CUDA graph, one GPU per rank,
// synchronized batch norm's CUDA kernels. On two real GPUs; in the emulated build on two emulated
// devices (GANCU_SIMT_DEVICES=2, each rank its own process and memory) with the emulator's NCCL,
// which all-reduces over MPI (tests/simt/nccl.cpp), fewer steps (the emulator is slow).
TEST(DataParallel, TwoGpuRanksFollowOneGpu) {
#if !GANCU_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL: the GPU path is not in this build";
#else
#if GANCU_CUDA_EMULATION
  setenv("GANCU_SIMT_DEVICES", "2", 1);  // inherited by mpirun and its ranks
  const int steps = 4;
#else
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess) gpus = 0;
  if (gpus < 2) GTEST_SKIP() << "needs 2 GPUs, found " << gpus << " (the CPU tests above cover the MPI path)";
  const int steps = 20;
#endif
  const std::string one = testing_cli::temp("dp_gpu_one"), two = testing_cli::temp("dp_gpu_two"),
                    bn_one = testing_cli::temp("dp_gpu_bn_one"), bn_two = testing_cli::temp("dp_gpu_bn_two");
  const std::string ring = "train --backend cuda --preset ring8 --set train.steps=" + std::to_string(steps) +
                           " --set train.batch=64 ";
  Result r = gancu_ranks(0, ring + common_flags(one));
  ASSERT_EQ(r.code, 0) << r.output;
  r = gancu_ranks(2, ring + common_flags(two));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("backend cuda, device 0"), std::string::npos) << r.output;
  EXPECT_LT(worst_relative_difference(latest_checkpoint(one), latest_checkpoint(two)), kTrajectoryTolerance);
  // SGD here: Adam's first steps move each parameter by about lr * sign(gradient), so a batch-norm
  // shift whose gradient is near zero can step either way on last-bit differences (1.5e-3 after 4
  // emulated steps), while SGD keeps them at rounding level (measured 1e-6 on the emulator) and a
  // wrong statistic still shows at once.
  const std::string mlp =
      "train --backend cuda --preset mlp --data fashion-mnist --set train.steps=" + std::to_string(steps) +
      " --set train.batch=32 --set model.sync_bn=true --set optim.g.name=\"sgd\" --set "
      "optim.d.name=\"sgd\" --set optim.g.lr=0.05 --set optim.d.lr=0.05 ";
  r = gancu_ranks(0, mlp + common_flags(bn_one));
  ASSERT_EQ(r.code, 0) << r.output;
  r = gancu_ranks(2, mlp + common_flags(bn_two));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LT(worst_relative_difference(latest_checkpoint(bn_one), latest_checkpoint(bn_two)),
            kTrajectoryTolerance);
#endif
}

TEST(DataParallel, InfoListsTheRanks) {
  const Result r = gancu_ranks(2, "info");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("data parallel: MPI"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 ranks on 1 node"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 0: host"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1: host"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace gancu
