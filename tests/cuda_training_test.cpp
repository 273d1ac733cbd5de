// The whole training iteration on the GPU against the CPU reference, from the same seed: the same
// parameters after 1 and after 20 iterations of mlp and dcgan; the CUDA graph replay against the
// same iteration run op by op; no device allocation once training runs.
//
// Tolerances (relative 2-norm error over all parameters of both networks; losses likewise):
//   after 1 iteration   1e-4  (fp32 ops differ in summation order only; Adam's first step is
//                              ~lr * sign(g), so a gradient element near 0 may flip: a few such
//                              elements move the norm far less than this)
//   after 20 iterations 1e-2  (the differences grow through the adversarial dynamics)
// These bounds are stated before any GPU run (none was lent when this was written); see
// docs/verification.md. They are not to be raised to make a failing run pass: a failure is a bug
// or a wrong assumption, to be understood first.
#include <gtest/gtest.h>

#include <cmath>

#include "gancu/config.h"
#include "gancu/data.h"
#include "gancu/graph.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/session.h"

namespace gancu {
namespace {

constexpr double kAfterOne = 1e-4, kAfterTwenty = 1e-2;

struct Trained {
  std::vector<float> params;  // G then D
  GanMetrics metrics;
};

// `iters` iterations of `preset` at batch 16 on synthetic 28x28x1 images.
Trained train_on(Backend backend, const char* preset, int iters, bool graph_on = false) {
  const Config cfg = load_config(
      preset, "", {{"train.batch", "16", "test"}, {"run.cuda_graph", graph_on ? "true" : "false", "test"}});
  Exec ex = backend == Backend::CUDA ? Exec::cuda(0) : Exec::cpu();
  const Dataset data = make_synthetic_dataset(28, 28, 1, 256, 3);
  GanSession s = make_session(cfg, Shape::image(16, 28, 28, 1), 16, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, 16, cfg.seed);
  const Gan::RealSource& real = device_data.source();

  StepGraph graph(ex, graph_on);
  for (int i = 0; i < iters; ++i) graph.run([&] { s.gan->train_step(ex, real); });
  Trained t;
  t.metrics = s.gan->read_metrics(ex);
  for (Network<float>* net : {&s.gan->generator(), &s.gan->discriminator()}) {
    std::vector<float> p(size_t(net->param_count()));
    copy_to_host(ex, p.data(), net->params(), p.size() * sizeof(float));
    t.params.insert(t.params.end(), p.begin(), p.end());
  }
  return t;
}

double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

double rel(double a, double b) {
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-12);
}

class CudaTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << why;
  }
};

void expect_same_training(const char* preset, int iters, double tol) {
  const Trained cpu = train_on(Backend::CPU, preset, iters);
  const Trained gpu = train_on(Backend::CUDA, preset, iters);
  ASSERT_EQ(cpu.params.size(), gpu.params.size());
  EXPECT_LE(rel(gpu.params, cpu.params), tol) << preset << " parameters after " << iters << " iterations";
  EXPECT_LE(rel(gpu.metrics.loss_d, cpu.metrics.loss_d), tol) << preset << " loss D";
  EXPECT_LE(rel(gpu.metrics.loss_g, cpu.metrics.loss_g), tol) << preset << " loss G";
}

TEST_F(CudaTraining, MlpMatchesCpuAfterOneAndTwentyIterations) {
  expect_same_training("mlp", 1, kAfterOne);
  expect_same_training("mlp", 20, kAfterTwenty);
}

TEST_F(CudaTraining, DcganMatchesCpuAfterOneAndTwentyIterations) {
  expect_same_training("dcgan", 1, kAfterOne);
  expect_same_training("dcgan", 20, kAfterTwenty);
}

TEST_F(CudaTraining, GraphReplayEqualsTheUncapturedIteration) {
  // Same device, same kernels, same order: the replayed graph must give the same bits.
  const Trained direct = train_on(Backend::CUDA, "dcgan", 6, false);
  const Trained replayed = train_on(Backend::CUDA, "dcgan", 6, true);
  EXPECT_EQ(direct.params, replayed.params);
  EXPECT_EQ(direct.metrics.loss_d, replayed.metrics.loss_d);
}

TEST_F(CudaTraining, NoDeviceAllocationInsideTheLoop) {
  const Config cfg = load_config("dcgan", "", {});
  Exec ex = Exec::cuda(0);
  const Dataset data = make_synthetic_dataset(28, 28, 1, 256, 3);
  GanSession s = make_session(cfg, Shape::image(64, 28, 28, 1), 64, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, data, 64, cfg.seed);
  const Gan::RealSource& real = device_data.source();

  StepGraph graph(ex, true);
  for (int i = 0; i < 3; ++i) graph.run([&] { s.gan->train_step(ex, real); });  // warm-up and capture
  ex.synchronize();
  size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_EQ(cuda_mem_get_info(&free_before, &total), true);
  const uint64_t allocs = allocation_count();
  for (int i = 0; i < 20; ++i) graph.run([&] { s.gan->train_step(ex, real); });
  ex.synchronize();
  ASSERT_EQ(cuda_mem_get_info(&free_after, &total), true);
  EXPECT_EQ(allocation_count(), allocs) << "gancu allocated device memory inside the loop";
  EXPECT_EQ(free_after, free_before) << "device memory changed inside the loop (a library allocated?)";
}

}  // namespace
}  // namespace gancu
