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
#include <fstream>
#include <sstream>
#include <thread>

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
  return "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_hwloc_base_binding_policy=none mpirun "
         "--allow-run-as-root --oversubscribe -np " +
         std::to_string(ranks) + " " + GANCU_BINARY + " " + args;
}

Result run_shell(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Result gancu_ranks(int ranks, const std::string& args) {
  return ranks == 0 ? run_shell(std::string(GANCU_BINARY) + " " + args) : run_shell(mpirun_command(ranks, args));
}

// The largest difference between two checkpoints' float tensors, relative to each tensor's
// largest magnitude; integer tensors (step counters) must be equal.
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
      double scale = 1e-12, diff = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        scale = std::max(scale, double(std::fabs(x[i])));
        diff = std::max(diff, double(std::fabs(x[i] - y[i])));
      }
      worst = std::max(worst, diff / scale);
    } else {
      EXPECT_EQ(ta.bytes, it->second.bytes) << name;
    }
  }
  return worst;
}

std::string common_flags(const std::string& out) {
  return "--set run.threads=1 --set log.log_every=5 --set log.sample_every=0 --set log.checkpoint_every=0 --out " +
         out;
}

// A generator without batch norm for 28x28 images: batch statistics are per rank (as in PyTorch's
// DDP), so only a model without them can follow one process exactly.
const char* kMlpWithoutBatchNorm =
    "--set 'model.generator=[\"linear out=128\", \"lrelu slope=0.2\", \"linear out=784\", \"tanh\", "
    "\"reshape h=28 w=28 c=1\"]' --set 'model.discriminator=[\"flatten\", \"linear out=128\", \"lrelu "
    "slope=0.2\", \"linear out=1\"]'";

// Adam divides each step by the root of its second moment, which magnifies the last-bit
// differences of a gradient averaged in another order; after 20 steps they stay below this.
constexpr double kTrajectoryTolerance = 1e-4;

TEST(DataParallel, TwoRanksFollowOneProcessOnTheRing) {
  const std::string one = testing_cli::temp("dp_ring_one"), two = testing_cli::temp("dp_ring_two");
  const std::string args = "train --preset ring8 --set train.steps=20 --set train.batch=64 ";
  const Result r1 = gancu_ranks(0, args + common_flags(one));
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = gancu_ranks(2, args + common_flags(two));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_NE(r2.output.find("data-parallel over MPI"), std::string::npos) << r2.output;
  EXPECT_NE(r2.output.find("32 of the global batch of 64 per rank"), std::string::npos) << r2.output;
  const double worst = worst_relative_difference(latest_checkpoint(one), latest_checkpoint(two));
  EXPECT_LT(worst, kTrajectoryTolerance);
  RecordProperty("worst_relative_difference", std::to_string(worst));
}

TEST(DataParallel, TwoRanksFollowOneProcessOnFashionMnist) {
  const std::string one = testing_cli::temp("dp_fmnist_one"), two = testing_cli::temp("dp_fmnist_two");
  const std::string args = std::string("train --preset mlp --data fashion-mnist --set train.steps=20 --set "
                                       "train.batch=32 ") +
                           kMlpWithoutBatchNorm + " ";
  const Result r1 = gancu_ranks(0, args + common_flags(one));
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = gancu_ranks(2, args + common_flags(two));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_LT(worst_relative_difference(latest_checkpoint(one), latest_checkpoint(two)), kTrajectoryTolerance);
}

}  // namespace
}  // namespace gancu
