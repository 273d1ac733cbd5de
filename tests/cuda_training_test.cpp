// The whole training iteration on the GPU against the CPU reference, from the same seed; the CUDA
// graph replay against the same iteration run op by op; no device allocation once training runs;
// the trainer's loop (log, sample, checkpoint steps between replays) on the GPU.
//
// What is compared, and the bounds (stated before any GPU run: none was lent when this was
// written; see docs/verification.md). They are not to be raised to make a failing run pass: a
// failure is a bug or a wrong assumption, to be understood first.
//   SGD, 1 iteration: the update p1 - p0 of every parameter tensor, relative error <= 1e-3, and of
//     each network as a whole <= 1e-4. With SGD the update is linear in the gradient, so this
//     checks every gradient, its scale included (Adam's first step, ~lr * sign(g), would hide a
//     wrong scale). Tensors whose update is below 1e-3 of their network's are held to 1e-3 of the
//     network's update instead (a bias before batch norm has a gradient that is zero but for
//     rounding). Batch norm running statistics: relative error <= 1e-4.
//   Adam, 1 iteration: all parameters, relative error <= 1e-4 (a gradient element near 0 may flip
//     the sign of its update; a few such elements move the norm far less than this).
//   Adam, 20 iterations: <= 1e-2 (the differences grow through the adversarial dynamics).
//   Losses: relative error within the same bounds.
// The same harness compares the CPU with itself at 1 and 2 threads (always runs), so that the
// comparison code is exercised where no GPU is present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "cuda_test_util.h"
#if GANCU_CUDA_EMULATION
#include <cuda_runtime.h>  // the emulator's stand-in: simtDeviceMallocCount
#endif

#include "gancu/checkpoint.h"
#include "gancu/config.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/safetensors.h"
#include "gancu/session.h"
#include "gancu/step_agreement.h"
#include "gancu/trainer.h"

namespace gancu {
namespace {

constexpr double kUpdateNet = 1e-4, kUpdateTensor = 1e-3, kAfterOne = 1e-4, kAfterTwenty = 1e-2;

// The buffers of one network, copied to the host.
struct NetState {
  std::vector<float> params, states;
  std::vector<NetworkTensor> tensors;
};
struct Trained {
  NetState before[2], after[2];  // G, D
  int nets = 2;                  // 1: G alone (the supervised generator has no D)
  GanMetrics metrics;
};

NetState snapshot(const Exec& ex, const Network<float>& net) {
  NetState s;
  s.params.resize(size_t(net.param_count()));
  s.states.resize(size_t(net.state_count()));
  copy_to_host(ex, s.params.data(), net.params(), s.params.size() * sizeof(float));
  if (!s.states.empty()) copy_to_host(ex, s.states.data(), net.states(), s.states.size() * sizeof(float));
  s.tensors = net.tensors();
  return s;
}

// `iters` iterations of `preset` at batch 16 on synthetic 28x28x1 images, with `optimizer` for
// both networks, on `ex` (one Exec for several runs shares its cuDNN plans: the same algorithms).
Trained train_on(Exec& ex, const char* preset, int iters, const char* optimizer, bool graph_on = false) {
  const Config cfg = load_config(preset, "",
                                 {{"train.batch", "16", "test"},
                                  {"run.cuda_graph", graph_on ? "true" : "false", "test"},
                                  {"optim.g.name", optimizer, "test"},
                                  {"optim.d.name", optimizer, "test"}});
  const Dataset data = make_synthetic_dataset(28, 28, 1, 256, 3);
  GanSession s = make_session(cfg, Shape::image(16, 28, 28, 1), 16, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, 16, cfg.seed);
  const Gan::RealSource& real = device_data.source();
  Network<float>* nets[2] = {&s.gan->generator(),
                             s.gan->has_discriminator() ? &s.gan->discriminator() : nullptr};

  Trained t;
  t.nets = nets[1] ? 2 : 1;
  for (int i = 0; i < t.nets; ++i) t.before[i] = snapshot(ex, *nets[i]);
  StepGraph graph(ex, graph_on);
  for (int i = 0; i < iters; ++i) graph.run([&] { s.gan->train_step(ex, real); });
  t.metrics = s.gan->read_metrics(ex);
  for (int i = 0; i < t.nets; ++i) t.after[i] = snapshot(ex, *nets[i]);
  return t;
}

// ||a - b|| and ||b|| over [begin, end), in double; a non-finite value in a gives inf.
struct Norms {
  double diff = 0, ref = 0;
  double rel() const { return ref > 0 ? diff / ref : diff; }
};
Norms norms(const std::vector<double>& a, const std::vector<double>& b, size_t begin, size_t end) {
  Norms n;
  for (size_t i = begin; i < end; ++i) {
    if (!std::isfinite(a[i])) return {INFINITY, 1.0};
    n.diff += (a[i] - b[i]) * (a[i] - b[i]);
    n.ref += b[i] * b[i];
  }
  n.diff = std::sqrt(n.diff);
  n.ref = std::sqrt(n.ref);
  return n;
}
std::vector<double> as_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}
std::vector<double> update(const NetState& before, const NetState& after) {
  std::vector<double> u(after.params.size());
  for (size_t i = 0; i < u.size(); ++i) u[i] = double(after.params[i]) - double(before.params[i]);
  return u;
}
double rel(double a, double b) {
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-12);
}

const char* kNetName[2] = {"G", "D"};

// One SGD iteration: every parameter tensor's update and the running statistics.
void expect_same_sgd_step(const char* preset, Exec& test, Exec& ref) {
  const Trained a = train_on(test, preset, 1, "sgd"), b = train_on(ref, preset, 1, "sgd");
  ASSERT_EQ(a.nets, b.nets);
  for (int k = 0; k < b.nets; ++k) {
    ASSERT_EQ(a.after[k].params.size(), b.after[k].params.size());
    EXPECT_EQ(a.before[k].params, b.before[k].params) << preset << " " << kNetName[k] << ": initialization";
    const std::vector<double> ua = update(a.before[k], a.after[k]), ub = update(b.before[k], b.after[k]);
    const Norms net = norms(ua, ub, 0, ub.size());
    ASSERT_GT(net.ref, 0.0) << preset << " " << kNetName[k] << ": the SGD step changed nothing";
    EXPECT_LE(net.rel(), kUpdateNet) << preset << " " << kNetName[k] << ": update of the whole network";
    for (const NetworkTensor& t : b.after[k].tensors) {
      if (t.kind != NetworkTensor::Param) continue;
      const Norms n = norms(ua, ub, size_t(t.offset), size_t(t.offset + t.count));
      const double bound = kUpdateTensor * std::max(n.ref, 1e-3 * net.ref);
      EXPECT_LE(n.diff, bound) << preset << " " << t.name << ": update off by " << n.diff << " (|update| "
                               << n.ref << ", network " << net.ref << ")";
    }
    const std::vector<double> sa = as_double(a.after[k].states), sb = as_double(b.after[k].states);
    if (!sb.empty())
      EXPECT_LE(norms(sa, sb, 0, sb.size()).rel(), kAfterOne)
          << preset << " " << kNetName[k] << ": batch norm running statistics";
  }
  EXPECT_LE(rel(a.metrics.loss_d, b.metrics.loss_d), kAfterOne) << preset << " loss D";
  EXPECT_LE(rel(a.metrics.loss_g, b.metrics.loss_g), kAfterOne) << preset << " loss G";
}

// `iters` Adam iterations: all parameters and the losses.
void expect_same_adam_training(const char* preset, int iters, double tol, Exec& test, Exec& ref) {
  const Trained a = train_on(test, preset, iters, "adam"), b = train_on(ref, preset, iters, "adam");
  for (int k = 0; k < 2; ++k) {
    const std::vector<double> pa = as_double(a.after[k].params), pb = as_double(b.after[k].params);
    ASSERT_EQ(pa.size(), pb.size());
    EXPECT_LE(norms(pa, pb, 0, pb.size()).rel(), tol)
        << preset << " " << kNetName[k] << " parameters after " << iters << " iterations";
  }
  EXPECT_LE(rel(a.metrics.loss_d, b.metrics.loss_d), tol) << preset << " loss D";
  EXPECT_LE(rel(a.metrics.loss_g, b.metrics.loss_g), tol) << preset << " loss G";
}

// The harness itself, where there is no GPU: the CPU at 2 threads against 1 thread (OpenBLAS and
// the OpenMP loops split their sums differently, so this is not a comparison of a run with itself).
TEST(TrainingParity, CpuAtTwoThreadsMatchesOneThread) {
  Exec one = Exec::cpu(1), two = Exec::cpu(2);
  expect_same_sgd_step("mlp", two, one);
  expect_same_sgd_step("dcgan", two, one);
  expect_same_adam_training("mlp", 1, kAfterOne, two, one);
}

// gancu bench's check before it times an iteration (step_agreement.h), where there is no GPU: the
// CPU at 2 threads against 1 thread agrees within the bound; different initializations never do.
TEST(TrainingParity, OneStepAgreementAsBenchChecksIt) {
  Exec one = Exec::cpu(1), two = Exec::cpu(2);
  for (const char* preset : {"mlp", "dcgan"}) {
    const StepAgreement a = compare_one_step(load_config(preset, "", {}), 16, two, one);
    EXPECT_TRUE(a.finite) << preset;
    EXPECT_LE(a.worst(), step_agreement_bound("fp32")) << preset;
  }
}

class CudaTraining : public test::CudaAgainstCpu {};

TEST_F(CudaTraining, OneStepAgreesWithTheCpuAsBenchChecksIt) {
  const StepAgreement a = compare_one_step(load_config("mlp", "", {}), 16, gpu_, cpu_);
  EXPECT_TRUE(a.finite);
  EXPECT_LE(a.worst(), step_agreement_bound("fp32"));
}
TEST_F(CudaTraining, MlpSgdStepMatchesCpuTensorByTensor) {
  expect_same_sgd_step("mlp", gpu_, cpu_);
}
TEST_F(CudaTraining, DcganSgdStepMatchesCpuTensorByTensor) {
  expect_same_sgd_step("dcgan", gpu_, cpu_);
}
// G's second output (the distance head, its loss and its gradient into the trunk).
TEST_F(CudaTraining, DistanceHeadSgdStepMatchesCpuTensorByTensor) {
  expect_same_sgd_step("mlp-distance", gpu_, cpu_);
}
// The supervised generator: G alone, from each real image's label and mean pixel value (row_means)
// to the image (mse_loss). Its MSE is loss G.
TEST_F(CudaTraining, SupervisedSgdStepMatchesCpuTensorByTensor) {
  expect_same_sgd_step("supervised", gpu_, cpu_);
}
// Conditional models: the labels gathered with the real batch, the fake classes drawn on the
// device, one-hot labels as D's constant channel maps (cgan), a label embedding in G and the
// projection critic under the gradient penalty's tangent pass (cwgan-gp).
TEST_F(CudaTraining, ConditionalSgdStepsMatchCpuTensorByTensor) {
  expect_same_sgd_step("cgan", gpu_, cpu_);
  expect_same_sgd_step("cwgan-gp", gpu_, cpu_);
}
TEST_F(CudaTraining, MlpMatchesCpuAfterOneAndTwentyIterations) {
  expect_same_adam_training("mlp", 1, kAfterOne, gpu_, cpu_);
  expect_same_adam_training("mlp", 20, kAfterTwenty, gpu_, cpu_);
}
TEST_F(CudaTraining, DcganMatchesCpuAfterOneAndTwentyIterations) {
  expect_same_adam_training("dcgan", 1, kAfterOne, gpu_, cpu_);
  expect_same_adam_training("dcgan", 20, kAfterTwenty, gpu_, cpu_);
}

TEST_F(CudaTraining, GraphReplayEqualsTheUncapturedIteration) {
  // Same device, same Exec (so the same cuDNN algorithms), same kernels in the same order: the
  // replayed graph must give the same bits.
  const Trained direct = train_on(gpu_, "dcgan", 6, "adam", false);
  const Trained replayed = train_on(gpu_, "dcgan", 6, "adam", true);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(direct.after[k].params, replayed.after[k].params) << kNetName[k] << " parameters";
    EXPECT_EQ(direct.after[k].states, replayed.after[k].states) << kNetName[k] << " running statistics";
  }
  EXPECT_EQ(direct.metrics.loss_d, replayed.metrics.loss_d);
  EXPECT_EQ(direct.metrics.loss_g, replayed.metrics.loss_g);
}

// A conditional model's labels (gathered, drawn from the step counter, one-hot) inside the
// captured graph: its replays draw each step's classes as the uncaptured iterations do. (cgan:
// one D step per iteration; cwgan-gp's penalty path runs in the SGD step test above.)
TEST_F(CudaTraining, ConditionalGraphReplayEqualsTheUncapturedIteration) {
  const Trained direct = train_on(gpu_, "cgan", 3, "adam", false);
  const Trained replayed = train_on(gpu_, "cgan", 3, "adam", true);
  for (int k = 0; k < 2; ++k) EXPECT_EQ(direct.after[k].params, replayed.after[k].params) << kNetName[k];
  EXPECT_EQ(direct.metrics.loss_d, replayed.metrics.loss_d);
}
// The supervised iteration replayed as a captured graph: each step's real batch, labels and mean
// pixel values come from device memory.
TEST_F(CudaTraining, SupervisedGraphReplayEqualsTheUncapturedIteration) {
  const Trained direct = train_on(gpu_, "supervised", 3, "adam", false);
  const Trained replayed = train_on(gpu_, "supervised", 3, "adam", true);
  ASSERT_EQ(direct.nets, 1);
  EXPECT_EQ(direct.after[0].params, replayed.after[0].params);
  EXPECT_NE(direct.after[0].params, direct.before[0].params) << "the steps changed G";
  EXPECT_EQ(direct.metrics.loss_g, replayed.metrics.loss_g);
}

// Values an iteration reads that can change during training (the learning rates, a loss's
// target) live in device memory: a graph captured before the change follows it. Three iterations,
// then new learning rates and label smoothing, three more; captured and direct runs agree, and
// differ from a run without the change (so the change reached the step at all).
TEST_F(CudaTraining, ChangedLearningRateAndLabelSmoothingReachTheCapturedGraph) {
  const auto run = [&](bool graph_on, bool change) {
    const Config cfg = load_config("dcgan", "", {{"train.batch", "16", "test"}});
    const Dataset data = make_synthetic_dataset(28, 28, 1, 256, 3);
    GanSession s = make_session(cfg, Shape::image(16, 28, 28, 1), 16, gpu_);
    s.gan->initialize(gpu_);
    const DeviceDataset device_data(gpu_, data, 16, cfg.seed);
    StepGraph graph(gpu_, graph_on);
    const auto body = [&] { s.gan->train_step(gpu_, device_data.source()); };
    for (int i = 0; i < 3; ++i) graph.run(body);
    if (change) {
      s.gan->optim_g().set_lr(gpu_, 1e-3f);
      s.gan->optim_d().set_lr(gpu_, 5e-5f);
      s.gan->objective().set_label_smoothing(gpu_, 0.2f);
    }
    for (int i = 0; i < 3; ++i) graph.run(body);
    return std::make_pair(snapshot(gpu_, s.gan->generator()), snapshot(gpu_, s.gan->discriminator()));
  };
  const auto direct = run(false, true), replayed = run(true, true), unchanged = run(true, false);
  EXPECT_EQ(direct.first.params, replayed.first.params) << "G";
  EXPECT_EQ(direct.second.params, replayed.second.params) << "D";
  EXPECT_NE(unchanged.first.params, replayed.first.params) << "the new learning rate did not reach G's step";
  EXPECT_NE(unchanged.second.params, replayed.second.params) << "the change did not reach D's step";
}

// Allocations are counted, not read off the device's free memory (which other processes on the
// same GPU change): the arena's (allocation_count), every cudaMalloc of the backend
// (device_allocation_count), and in the emulated build every cudaMalloc the process makes.
// DCGAN at batch 16: what allocates does not depend on the batch.
TEST_F(CudaTraining, NoDeviceAllocationInsideTheLoop) {
  const Config cfg = load_config("dcgan", "", {{"train.batch", "16", "test"}});
  Exec& ex = gpu_;
  const Dataset data = make_synthetic_dataset(28, 28, 1, 256, 3);
  GanSession s = make_session(cfg, Shape::image(16, 28, 28, 1), 16, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, 16, cfg.seed);
  const Gan::RealSource& real = device_data.source();
  const auto body = [&] { s.gan->train_step(ex, real); };

  // Op by op, where every library call runs again each iteration (a replayed graph runs no host
  // code, so only the direct iteration can show an allocation). The first is the warm-up.
  StepGraph direct(ex, false);
  direct.run(body);
  ex.synchronize();
  const uint64_t allocs = allocation_count(), device_allocs = device_allocation_count();
  ASSERT_GT(device_allocs, 0u) << "the backend's cudaMalloc counter counts nothing";
#if GANCU_CUDA_EMULATION
  const uint64_t mallocs = simtDeviceMallocCount();
#endif
  for (int i = 0; i < 5; ++i) direct.run(body);
  ex.synchronize();
  EXPECT_EQ(allocation_count(), allocs) << "gancu allocated backend memory inside the loop";
  EXPECT_EQ(device_allocation_count(), device_allocs) << "the CUDA backend called cudaMalloc inside the loop";
#if GANCU_CUDA_EMULATION
  EXPECT_EQ(simtDeviceMallocCount(), mallocs) << "cudaMalloc was called inside the loop";
#endif

  // Captured: capture succeeds (an allocating or synchronizing call would break it) and replays.
  StepGraph graph(ex, true);
  for (int i = 0; i < 5; ++i) graph.run(body);
  ex.synchronize();
  EXPECT_EQ(allocation_count(), allocs);
  EXPECT_EQ(device_allocation_count(), device_allocs);
#if GANCU_CUDA_EMULATION
  EXPECT_EQ(simtDeviceMallocCount(), mallocs);
#endif
  EXPECT_EQ(s.gan->read_step(ex), 11);
}

#if GANCU_CUDA_EMULATION
// A GAN loaded to sample (gancu sample, eval, compare) plans no backward pass: with no
// filter-gradient algorithm at all (the emulator's cuDNN made to withhold it), a training session
// is refused naming the pass, and a sample-only one plans and draws samples.
TEST_F(CudaTraining, SampleOnlySessionPlansNoBackwardPass) {
  const test::WithheldAlgorithms no_bwd_filter(4);
  const Config cfg = load_config("dcgan", "", {{"train.batch", "8", "test"}});
  try {
    (void)make_session(cfg, Shape::image(8, 28, 28, 1), 8, gpu_);
    ADD_FAILURE() << "a training session planned without filter-gradient algorithms";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("backward-filter"), std::string::npos) << e.what();
  }
  Exec ex = Exec::cuda(0);  // a fresh context: the failed plans stay in gpu_'s
  GanSession s = make_session(cfg, Shape::image(8, 28, 28, 1), 8, ex, false, true);
  s.gan->initialize(ex);
  const std::vector<float> images = draw_samples(ex, *s.gan, 8, 1, 1);
  ASSERT_EQ(images.size(), size_t(8) * 28 * 28);
  for (float v : images) ASSERT_TRUE(std::isfinite(v) && v >= -1.0f && v <= 1.0f) << v;
}
#endif

// The trainer on the GPU: log, sample and checkpoint steps between graph replays (the grids run
// the generator at another batch) leave the training unchanged: the same checkpoint as the
// uncaptured run.
TEST_F(CudaTraining, TrainerWithGraphWritesTheSameCheckpointAsWithout) {
  const std::string base = ::testing::TempDir() + "/gancu_cuda_trainer_" + std::to_string(::getpid());
  std::system(("rm -rf '" + base + "'").c_str());
  std::string last[2];
  for (int graph_on = 0; graph_on < 2; ++graph_on) {
    const Config cfg = load_config("dcgan", "",
                                   {{"data.name", "synthetic:28x28x1:512", "test"},
                                    {"train.batch", "32", "test"},
                                    {"train.steps", "7", "test"},
                                    {"run.cuda_graph", graph_on ? "true" : "false", "test"},
                                    {"log.log_every", "2", "test"},
                                    {"log.sample_every", "3", "test"},
                                    {"log.checkpoint_every", "5", "test"},
                                    {"log.grid", "16", "test"}});
    std::ostringstream log;
    const TrainResult r = train(cfg, gpu_, TrainRun{base + "_" + std::to_string(graph_on), false, &log});
    EXPECT_EQ(r.steps, 7);
    last[graph_on] = r.last_checkpoint;
  }
  const auto a = read_safetensors(last[0]).tensors, b = read_safetensors(last[1]).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(t.bytes, b.at(name).bytes) << name << " differs between the captured and the direct run";
  }
}

}  // namespace
}  // namespace gancu
