// The training loop and its run folder: resume equivalence, no allocation inside the loop,
// divergence handling, and what the folder holds.
#include "gancu/trainer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/safetensors.h"
#include "gancu/session.h"

// Every heap allocation of the test binary is counted, so that a test can prove that a stretch
// of code allocates nothing.
static std::atomic<uint64_t> g_host_allocations{0};
void* operator new(size_t n) {
  ++g_host_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them): without them those
// allocations went uncounted, and AddressSanitizer reported ASan's own operator new released by
// this file's operator delete (free).
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  ++g_host_allocations;
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  ++g_host_allocations;
  return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace gancu {
namespace {

std::string temp_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/gancu_trainer_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

// `base`, then batch 16, `steps` steps, a log point every 2 steps, a grid and a checkpoint every 3.
std::vector<ConfigOverride> short_run(std::vector<ConfigOverride> base, int64_t steps, int grid) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"train.batch", "16"},
                                                        {"train.steps", std::to_string(steps)},
                                                        {"log.log_every", "2"},
                                                        {"log.sample_every", "3"},
                                                        {"log.checkpoint_every", "3"},
                                                        {"log.grid", std::to_string(grid)}})
    base.push_back({key, value, "test"});
  return base;
}

// A small dcgan-like model on synthetic 8x8 images: every layer kind of the presets, fast.
Config small_config(int64_t steps) {
  return load_config(
      "dcgan", "",
      short_run(
          {{"data.name", "synthetic:8x8x1:256", "test"},
           {"model.z_dim", "8", "test"},
           {"model.generator",
            R"(["linear out=64 bias=false", "bn", "relu", "reshape h=4 w=4 c=4", "convT out=4 k=4 s=2 p=1 bias=false", "bn", "relu", "conv out=1 k=3 s=1 p=1", "tanh"])",
            "test"},
           {"model.discriminator",
            R"(["conv out=4 k=4 s=2 p=1", "lrelu", "conv out=8 k=4 s=2 p=1 bias=false", "bn", "lrelu", "flatten", "linear out=1"])",
            "test"}},
          steps, 16));
}

TrainResult run_training(const Config& cfg, const std::string& dir, bool resume) {
  Exec ex = Exec::cpu(1);
  std::ostringstream log;
  return train(cfg, ex, TrainRun{dir, resume, &log});
}

// (step, loss_d, loss_g) of each line of a run's metrics.jsonl.
std::vector<std::string> metric_losses(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    out.push_back(j.at("step").dump() + " " + j.at("loss_d").dump() + " " + j.at("loss_g").dump());
  }
  return out;
}

std::map<std::string, TensorData> tensors_of(const std::string& path) {
  return read_safetensors(path).tensors;
}

TEST(Trainer, RunFolderHoldsConfigMetricsSamplesAndCheckpoints) {
  const std::string dir = temp_dir("folder");
  const TrainResult r = run_training(small_config(6), dir, false);
  EXPECT_TRUE(file_exists(dir + "/config.toml"));
  EXPECT_TRUE(file_exists(dir + "/samples/step_000003.png"));
  EXPECT_TRUE(file_exists(dir + "/samples/step_000006.png"));
  EXPECT_EQ(r.last_checkpoint, checkpoint_path(dir, 6));
  EXPECT_TRUE(file_exists(checkpoint_path(dir, 3)));
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    EXPECT_NE(line.find("\"loss_d\""), std::string::npos);
    EXPECT_NE(line.find("\"images_per_s\""), std::string::npos);
  }
  EXPECT_EQ(lines, 4);  // steps 2, 3 (checkpoint), 4, 6
  // The resolved config is a valid config and names the same model.
  const std::vector<uint8_t> text = read_file(dir + "/config.toml");
  EXPECT_EQ(load_config_text(std::string(text.begin(), text.end()), "config.toml").generator,
            small_config(6).generator);
  // A second run into the same folder is refused (it would mix two runs).
  EXPECT_THROW(run_training(small_config(6), dir, false), UsageError);
}

// A grid is written every sample_every steps even where no log or checkpoint step falls.
TEST(Trainer, SampleGridsFollowSampleEveryOnItsOwn) {
  const std::string dir = temp_dir("sample_every");
  Config cfg = small_config(6);
  cfg.sample_every = 5;
  cfg.checkpoint_every = 4;
  run_training(cfg, dir, false);
  EXPECT_TRUE(file_exists(dir + "/samples/step_000005.png")) << "the grid of step 5 is missing";
  EXPECT_TRUE(file_exists(dir + "/samples/step_000006.png")) << "the last step's grid is missing";
  EXPECT_FALSE(file_exists(dir + "/samples/step_000004.png"));
}

// A generator with dropout: the gradients of the generator step are those of the masks its
// forward drew. Recomputed here op by op from the generator's parameters before the step, the
// noise it used and data step 0; the backward must give the same bits.
TEST(Trainer, GeneratorDropoutUsesTheForwardMasksInTheBackward) {
  const Config cfg = load_config(
      "mlp", "",
      {{"data.name", "synthetic:8x8x1:256", "test"},
       {"model.z_dim", "8", "test"},
       {"model.generator",
        R"(["linear out=32", "relu", "dropout p=0.5", "linear out=64", "tanh", "reshape h=8 w=8 c=1"])",
        "test"},
       {"model.discriminator", R"(["flatten", "linear out=16", "lrelu", "linear out=1"])", "test"},
       {"train.batch", "16", "test"},
       {"train.d_steps", "1", "test"}});
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(cfg, Shape::image(16, 8, 8, 1), 16, ex);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  const DeviceDataset data(ex, make_synthetic_dataset(8, 8, 1, 256, 1), 16, 1);
  Network<float>& G = gan.generator();
  Network<float>& D = gan.discriminator();
  const std::vector<float> g_params(G.params(), G.params() + G.param_count());
  gan.train_step(ex, data.source());
  const std::vector<float> g_grads(G.grads(), G.grads() + G.param_count());

  // The generator step again: G as before the step, D as after its update (the G step's D).
  std::copy(g_params.begin(), g_params.end(), G.params());
  const int64_t step0 = 0;
  G.forward(ex, gan.noise_buffer(), 16, BatchNormMode::Train, &step0, cfg.seed);
  D.forward(ex, G.output(), 16, BatchNormMode::Train, &step0, cfg.seed);
  const LossTerm generator_term{LossKind::BCE, 1.0f, 1.0f};
  ops::gan_loss<float>(ex, &generator_term, 16, D.output(), D.output_grad(), nullptr, nullptr);
  D.backward(ex, G.output_grad(), false, false);
  ops::fill<float>(ex, G.param_count(), G.grads(), 0.0f);
  G.backward(ex, nullptr, false, true);
  const std::vector<float> expected(G.grads(), G.grads() + G.param_count());
  EXPECT_EQ(g_grads, expected) << "the generator's backward drew other dropout masks than its forward";
}

// The newest three checkpoints stay, whatever their steps: one saved off the grid (a run's last
// step, as a stop by a signal saves) goes like the periodic ones once three newer ones exist.
TEST(Trainer, OnlyTheNewestThreeCheckpointsStayWhateverTheirSteps) {
  const std::string dir = temp_dir("prune");
  run_training(small_config(5), dir, false);  // checkpoints at 3 and 5 (every 3, and the last step)
  EXPECT_EQ(checkpoint_steps(dir), (std::vector<int64_t>{3, 5}));
  run_training(small_config(13), dir, true);  // then 6, 9, 12 and 13
  EXPECT_EQ(checkpoint_steps(dir), (std::vector<int64_t>{9, 12, 13}));
  EXPECT_EQ(latest_checkpoint(dir), checkpoint_path(dir, 13));
}

TEST(Trainer, ResumeGivesExactlyTheParametersOfAnUninterruptedRun) {
  const std::string whole = temp_dir("whole"), parts = temp_dir("parts");
  run_training(small_config(8), whole, false);
  run_training(small_config(4), parts, false);     // stops at step 4 (checkpoint at 3 and 4)
  std::remove(checkpoint_path(parts, 4).c_str());  // resume from 3: an interruption mid-way
  run_training(small_config(8), parts, true);
  const auto a = tensors_of(checkpoint_path(whole, 8));
  const auto b = tensors_of(checkpoint_path(parts, 8));
  ASSERT_EQ(a.size(), b.size());
  int compared = 0;
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(t.bytes, b.at(name).bytes) << name << " differs after resume";
    ++compared;
  }
  EXPECT_GT(compared, 20);
  // The metrics of the resumed run replace those after the checkpoint: the same steps with the
  // same losses as the uninterrupted run.
  EXPECT_EQ(metric_losses(parts), metric_losses(whole));
  EXPECT_EQ(metric_losses(whole).size(), 5u);  // steps 2, 3, 4, 6, 8
}

// The supervised generator's run (no D in its checkpoints) resumes as exactly: G, its optimizer
// and the counters are the whole state.
TEST(Trainer, SupervisedRunResumesExactly) {
  const auto config = [](int64_t steps) {
    return load_config(
        "supervised", "",
        short_run(
            {{"data.name", "synthetic:8x8x1:256", "test"},
             {"model.generator",
              R"(["concat in=input,label", "linear out=32", "relu", "linear out=64", "tanh", "reshape h=8 w=8 c=1"])",
              "test"}},
            steps, 20));
  };
  const std::string whole = temp_dir("sup_whole"), parts = temp_dir("sup_parts");
  run_training(config(8), whole, false);
  run_training(config(4), parts, false);
  std::remove(checkpoint_path(parts, 4).c_str());
  run_training(config(8), parts, true);
  const auto a = tensors_of(checkpoint_path(whole, 8)), b = tensors_of(checkpoint_path(parts, 8));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(t.bytes, b.at(name).bytes) << name << " differs after resume";
    EXPECT_NE(name.rfind("D.", 0), 0u) << "a D tensor in a supervised checkpoint: " << name;
    EXPECT_NE(name, "optim.d.state");
  }
  EXPECT_TRUE(a.count("optim.g.state"));
  EXPECT_EQ(metric_losses(parts), metric_losses(whole));
}

// D pre-training is part of the run's state: a resumed run does not pre-train again, and ends
// with the bits of the uninterrupted run; pre-training changes the run (it is not skipped).
TEST(Trainer, ResumeAfterDPretrainingGivesTheUninterruptedRun) {
  const auto with_pretraining = [](int64_t steps) {
    Config cfg = small_config(steps);
    return load_config_text(cfg.toml, "test", {{"train.d_pretrain_steps", "5", "test"}});
  };
  const std::string whole = temp_dir("pretrain_whole"), parts = temp_dir("pretrain_parts"),
                    plain = temp_dir("pretrain_none");
  Exec ex = Exec::cpu(1);
  std::ostringstream log_whole, log_first, log_resumed;
  train(with_pretraining(8), ex, TrainRun{whole, false, &log_whole});
  train(with_pretraining(4), ex, TrainRun{parts, false, &log_first});
  std::remove(checkpoint_path(parts, 4).c_str());
  train(with_pretraining(8), ex, TrainRun{parts, true, &log_resumed});
  run_training(small_config(8), plain, false);
  EXPECT_NE(log_whole.str().find("pre-training D alone for 5 steps against histogram fakes"),
            std::string::npos)
      << log_whole.str();
  EXPECT_NE(log_whole.str().find("D pre-trained: loss D"), std::string::npos);
  EXPECT_EQ(log_resumed.str().find("pre-training"), std::string::npos) << log_resumed.str();
  const auto a = tensors_of(checkpoint_path(whole, 8)), b = tensors_of(checkpoint_path(parts, 8)),
             c = tensors_of(checkpoint_path(plain, 8));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.bytes, b.at(name).bytes) << name << " differs after resume";
  EXPECT_NE(a.at("D.0.weight").bytes, c.at("D.0.weight").bytes) << "pre-training left D as it was";
}

// Runs a few training steps of `cfg` after one warm-up step and counts allocations.
void expect_no_allocation_in_loop(const Config& cfg, Shape image) {
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(cfg, image.with_batch(cfg.batch), cfg.batch, ex);
  s.gan->initialize(ex);
  const DeviceDataset device_data(ex, make_synthetic_dataset(image.h, image.w, image.c, 4 * cfg.batch, 1),
                                  cfg.batch, 1);
  const Gan::RealSource& real = device_data.source();
  // First step outside the count (lazy one-time set-up may allocate).
  s.gan->train_step(ex, real, nullptr, s.gan->penalty_steps(0));
  const uint64_t host_before = g_host_allocations.load(), backend_before = allocation_count();
  for (int i = 1; i < 4; ++i) s.gan->train_step(ex, real, nullptr, s.gan->penalty_steps(i));
  EXPECT_EQ(g_host_allocations.load() - host_before, 0u) << "heap allocations inside the training loop";
  EXPECT_EQ(allocation_count() - backend_before, 0u) << "backend allocations inside the training loop";
  EXPECT_EQ(s.gan->read_step(ex), 4);
}

TEST(Trainer, TrainingStepAllocatesNothing) {
  expect_no_allocation_in_loop(small_config(1), Shape::image(16, 8, 8, 1));
  // The presets at batch 16: what allocates does not depend on the batch, and a DCGAN step at the
  // preset's 64 on one thread made this the slowest test of the suite.
  const std::vector<ConfigOverride> batch16 = {{"train.batch", "16", "test"}};
  expect_no_allocation_in_loop(load_config("dcgan", "", batch16), Shape::image(16, 28, 28, 1));
  expect_no_allocation_in_loop(load_config("mlp", "", batch16), Shape::image(16, 28, 28, 1));
  // The objectives: a gradient penalty's tangent pass, BEGAN's auto-encoder, a lazy R1 iteration.
  const std::vector<ConfigOverride> small = {{"train.batch", "8", "test"}};
  for (const char* preset : {"wgan-gp", "dragan", "r1", "began", "wgan"})
    expect_no_allocation_in_loop(load_config(preset, "", small), Shape::image(8, 28, 28, 1));
  // The remedies against mode collapse: the minibatch layers, feature matching's extra pass and
  // the distance head (with its pairwise distances).
  for (const char* preset : {"mbdisc", "mbstd", "mlp-distance"})
    expect_no_allocation_in_loop(load_config(preset, "", small), Shape::image(8, 28, 28, 1));
  // Conditional models: labels gathered, classes drawn, one-hot labels, an embedding, the
  // projection critic under the penalty.
  // The supervised generator: G alone, its mean pixel values and MSE.
  for (const char* preset : {"cgan", "cwgan-gp", "supervised"})
    expect_no_allocation_in_loop(load_config(preset, "", small), Shape::image(8, 28, 28, 1));
  expect_no_allocation_in_loop(
      load_config("mlp-distance", "",
                  {{"train.batch", "8", "test"}, {"train.distance_label", "mean_distance", "test"}}),
      Shape::image(8, 28, 28, 1));
  expect_no_allocation_in_loop(
      load_config("mbdisc", "",
                  {{"train.batch", "8", "test"}, {"train.feature_matching", "features", "test"}}),
      Shape::image(8, 28, 28, 1));
}

// D runs several times per data step (on the real batch, on the fakes, in the G step, at a
// penalty's points): each pass draws its own dropout mask, keyed by the data step, and its
// backward uses the mask of its own forward.
TEST(Trainer, EachPassOfTheDiscriminatorDrawsItsOwnDropoutMask) {
  const Config cfg = load_config_text(
      "", "test",
      {{"data.name", "synthetic:4x4x1:64", "test"},
       {"model.z_dim", "4", "test"},
       {"model.generator", R"(["linear out=16", "tanh", "reshape h=4 w=4 c=1"])", "test"},
       {"model.discriminator", R"(["flatten", "dropout p=0.5 name=dropped", "linear out=1"])", "test"},
       {"train.batch", "8", "test"},
       {"train.d_steps", "2", "test"}});
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(cfg, Shape::image(8, 4, 4, 1), 8, ex);
  Gan& gan = *s.gan;
  gan.initialize(ex);
  const DeviceDataset data(ex, make_synthetic_dataset(4, 4, 1, 64, 1), 8, 1);
  Network<float>& D = gan.discriminator();
  const int dropped = D.value_id("dropped");
  const auto mask = [&] {
    const float* v = D.value_data(dropped);
    std::vector<bool> m(8 * 16);
    for (size_t i = 0; i < m.size(); ++i) m[i] = v[i] == 0.0f;
    return m;
  };
  std::vector<std::vector<bool>> masks;  // per pass, in order, over two iterations
  std::vector<bool> g_step_mask;
  const PhaseHook hook = [&](const char* phase) {
    const std::string p = phase;
    if (p == "d_real" || p == "d_fake") masks.push_back(mask());
    if (p == "g_backward") {
      g_step_mask = mask();
      masks.push_back(g_step_mask);
      // The G step's backward used its forward's mask: no gradient reaches a dropped input.
      const float* dfake = gan.generator().output_grad();
      for (size_t i = 0; i < g_step_mask.size(); ++i)
        if (g_step_mask[i]) EXPECT_EQ(dfake[i], 0.0f) << "element " << i;
    }
  };
  gan.train_step(ex, data.source(), hook);
  gan.train_step(ex, data.source(), hook);
  ASSERT_EQ(masks.size(), 10u);  // 2 x (2 D steps x (real, fake) + the G step)
  for (size_t a = 0; a < masks.size(); ++a)
    for (size_t b = a + 1; b < masks.size(); ++b)
      EXPECT_NE(masks[a], masks[b]) << "passes " << a << " and " << b;
}

TEST(Trainer, DivergenceStopsWithAMessageAndKeepsTheLastGoodCheckpoint) {
  const std::string dir = temp_dir("nan");
  run_training(small_config(3), dir, false);
  // Poison the generator's first weight in the checkpoint, as a blown-up step would.
  const std::string ckpt = checkpoint_path(dir, 3);
  SafeTensors f = read_safetensors(ckpt);
  float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(f.tensors.at("G.0.weight").bytes.data(), &nan, sizeof nan);
  write_safetensors(ckpt, f.tensors, f.metadata);
  try {
    run_training(small_config(9), dir, true);
    ADD_FAILURE() << "training on NaN parameters did not stop";
  } catch (const RuntimeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("diverged"), std::string::npos) << what;
    EXPECT_NE(what.find(ckpt), std::string::npos) << what;
  }
  EXPECT_FALSE(file_exists(checkpoint_path(dir, 6))) << "a checkpoint was written after divergence";
  EXPECT_FALSE(file_exists(checkpoint_path(dir, 9)));
}

TEST(Trainer, SaveCheckpointRefusesNonFiniteParameters) {
  const Config cfg = small_config(1);
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(cfg, Shape::image(16, 8, 8, 1), 16, ex);
  s.gan->initialize(ex);
  s.gan->discriminator().params()[0] = std::numeric_limits<float>::infinity();
  const std::string path = temp_dir("refuse") + ".safetensors";
  EXPECT_THROW(save_checkpoint(ex, *s.gan, path), RuntimeError);
  EXPECT_FALSE(file_exists(path));
}

TEST(Trainer, CheckpointsLoadIntoTheSameModelOnlyAndKeepPyTorchLayouts) {
  const std::string dir = temp_dir("layout");
  run_training(small_config(3), dir, false);
  const auto t = tensors_of(checkpoint_path(dir, 3));
  // convT weight: PyTorch's ConvTranspose2d(in=4, out=4, k=4) is [in, out, kh, kw].
  EXPECT_EQ(t.at("G.4.weight").shape, (std::vector<int64_t>{4, 4, 4, 4}));
  EXPECT_EQ(t.at("D.0.weight").shape, (std::vector<int64_t>{4, 1, 4, 4}));  // Conv2d [out, in, kh, kw]
  EXPECT_EQ(t.at("D.6.weight").shape, (std::vector<int64_t>{1, 32}));       // Linear [out, in]
  EXPECT_EQ(t.at("G.1.num_batches_tracked").dtype, "I64");
  // A different model refuses the checkpoint with a message naming the tensor.
  Config other = small_config(3);
  other.discriminator[2] = "conv out=6 k=4 s=2 p=1 bias=false";
  Exec ex = Exec::cpu(1);
  GanSession s = make_session(other, Shape::image(16, 8, 8, 1), 16, ex);
  s.gan->initialize(ex);
  try {
    load_checkpoint(ex, *s.gan, checkpoint_path(dir, 3));
    ADD_FAILURE() << "loaded a checkpoint of another model";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("D.2.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gancu
