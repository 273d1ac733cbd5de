// Config resolution: defaults < preset < --config file < flags and --set, with every key and type
// checked and every impossible value rejected with a message naming where it came from.
#include "gancu/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "gancu/check.h"

namespace gancu {
namespace {

void expect_usage_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(Config, PresetsResolveToTheirDocumentedSettings) {
  const Config c = load_config("dcgan", "", {});
  EXPECT_EQ(c.preset, "dcgan");
  EXPECT_EQ(c.data, "fashion-mnist");
  EXPECT_EQ(c.batch, 64);
  EXPECT_EQ(c.z_dim, 100);
  EXPECT_EQ(c.latent, NoiseKind::Normal);
  EXPECT_EQ(c.init, InitScheme::DCGAN);
  EXPECT_FLOAT_EQ(c.optim_g.lr, 2e-4f);
  EXPECT_FLOAT_EQ(c.optim_d.beta1, 0.5f);
  EXPECT_FLOAT_EQ(c.optim_d.beta2, 0.999f);
  EXPECT_EQ(c.d_steps, 1);
  EXPECT_EQ(c.generator.front(), "linear out=12544 bias=false");
  EXPECT_EQ(load_config("mlp", "", {}).init, InitScheme::PyTorch);
  EXPECT_EQ(preset_names(), (std::vector<std::string>{
                                "began",       "cgan",    "cwgan-gp", "dcgan",         "dcgan-uniform32",
                                "dcgan32",     "dcgan64", "dragan",   "grid25",        "hinge",
                                "lsgan",       "mbdisc",  "mbstd",    "mlp",           "mlp-distance",
                                "mlp-uniform", "r1",      "ring8",    "stacked-mnist", "supervised",
                                "wgan",        "wgan-gp"}));
  EXPECT_EQ(c.classes, 0) << "unconditional by default";
  // The conditional presets (docs/conditional.md): ten classes, the networks read "label".
  const Config cg = load_config("cgan", "", {});
  EXPECT_EQ(cg.classes, 10);
  EXPECT_EQ(cg.data, "fashion-mnist");
  EXPECT_EQ(cg.generator.front(), "concat in=input,label");
  const Config cw = load_config("cwgan-gp", "", {});
  EXPECT_EQ(cw.classes, 10);
  EXPECT_EQ(cw.loss, "wgan-gp");
  EXPECT_EQ(cw.data, "mnist");
  EXPECT_EQ(cw.discriminator.at(cw.discriminator.size() - 2), "project in=phi,label name=proj");
  // dcgan64: the DCGAN paper's 64x64x3 networks, batch 128 as the paper trained them.
  const Config d64 = load_config("dcgan64", "", {});
  EXPECT_EQ(d64.batch, 128);
  EXPECT_EQ(d64.generator.at(1), "convT out=512 k=4 s=1 p=0 bias=false");
  EXPECT_EQ(d64.discriminator.at(d64.discriminator.size() - 2), "conv out=1 k=4 s=1 p=0 bias=false");
  // The first MLP GAN's setting, and DCGAN with a uniform latent of 32 (docs/mode_collapse.md).
  const Config first = load_config("mlp-uniform", "", {});
  EXPECT_EQ(first.latent, NoiseKind::Uniform);
  EXPECT_EQ(first.batch, 120);
  EXPECT_EQ(first.steps, 30000);
  EXPECT_EQ(first.generator, load_config("mlp", "", {}).generator);
  const Config u32 = load_config("dcgan-uniform32", "", {});
  EXPECT_EQ(u32.latent, NoiseKind::Uniform);
  EXPECT_EQ(u32.z_dim, 32);
  EXPECT_EQ(u32.discriminator, load_config("dcgan", "", {}).discriminator);
  // The objectives' presets: the settings of their papers (docs/objectives.md).
  const Config gp = load_config("wgan-gp", "", {});
  EXPECT_EQ(gp.loss, "wgan-gp");
  EXPECT_EQ(gp.d_steps, 5);
  EXPECT_FLOAT_EQ(gp.gp_weight, 10.0f);
  EXPECT_FLOAT_EQ(gp.optim_d.lr, 1e-4f);
  EXPECT_FLOAT_EQ(gp.optim_d.beta1, 0.0f);
  EXPECT_FLOAT_EQ(gp.optim_d.beta2, 0.9f);
  EXPECT_EQ(gp.data, "mnist");
  const Config w = load_config("wgan", "", {});
  EXPECT_EQ(w.optim_d.name, "rmsprop");
  EXPECT_FLOAT_EQ(w.clip, 0.01f);
  EXPECT_FLOAT_EQ(w.optim_d.lr, 5e-5f);
  for (const char* name : {"lsgan", "hinge", "dragan", "r1", "began"})
    EXPECT_EQ(load_config(name, "", {}).loss, name);
}

TEST(Config, OverridesApplyInOrderAndTheResolvedTomlRoundTrips) {
  const std::string path = ::testing::TempDir() + "/gancu_config_test.toml";
  {
    std::ofstream f(path);
    f << "[train]\nbatch = 32\nsteps = 7\n[optim.d]\nlr = 1\n";
  }
  const Config c =
      load_config("dcgan", path,
                  {{"train.batch", "16", "--batch"},
                   {"data.name", "mnist", "--set data.name"},
                   {"model.generator", "[\"linear out=784\", \"tanh\", \"reshape h=28 w=28 c=1\"]",
                    "--set model.generator"}});
  EXPECT_EQ(c.batch, 16);               // flag beats file
  EXPECT_EQ(c.steps, 7);                // file beats preset
  EXPECT_FLOAT_EQ(c.optim_d.lr, 1.0f);  // an integer where a number is expected
  EXPECT_EQ(c.data, "mnist");           // bare string
  EXPECT_EQ(c.generator.size(), 3u);
  const Config again = load_config_text(c.toml, "resolved");
  EXPECT_EQ(again.toml, c.toml);
  EXPECT_EQ(again.batch, 16);
  EXPECT_EQ(again.generator, c.generator);
  std::remove(path.c_str());
}

TEST(Config, ImpossibleValuesNameTheFlagOrKey) {
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"train.batch", "0", "--batch"}});
      },
      {"--batch", "train.batch", "got 0"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"train.steps", "-1", "--steps"}});
      },
      {"--steps", "got -1"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"optim.g.lr", "-0.1", "--set optim.g.lr"}});
      },
      {"--set optim.g.lr", "must be in (0"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"optim.d.beta1", "1.5", "--set optim.d.beta1"}});
      },
      {"optim.d.beta1"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"train.label_smoothing", "0.7", "--set x"}});
      },
      {"label_smoothing"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"train.batch", "many", "--batch"}});
      },
      {"--batch", "must be an integer, got a string"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"train.bacth", "3", "--set train.bacth"}});
      },
      {"unknown config key 'train.bacth'"});
  expect_usage_error(
      [] {
        load_config("dcgan", "", {{"model.latent", "gaussian", "--set model.latent"}});
      },
      {"expected one of normal, uniform"});
  expect_usage_error([] { load_config("nope", "", {}); }, {"--preset", "unknown preset 'nope'", "dcgan"});
  expect_usage_error([] { load_config("", "", {}); }, {"--preset"});
  expect_usage_error([] { load_config("", "/nonexistent/x.toml", {}); }, {"/nonexistent/x.toml"});
  expect_usage_error([] { load_config_text("[train\nbatch=1", "bad.toml"); }, {"bad.toml", "not valid TOML"});
  expect_usage_error([] { load_config_text("[train]\nbatch = 1.5\n", "f.toml"); }, {"f.toml", "train.batch"});
}

}  // namespace
}  // namespace gancu
