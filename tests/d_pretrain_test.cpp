// D pre-training (train.d_pretrain_steps; d_pretrain.h): the fakes' ops against their definition,
// the histogram fakes' pixel statistics against the data's, and a D that must learn to tell real
// MNIST digits from both kinds of fakes. The trainer's side (resume) is in trainer_test.cpp.
#include "gancu/d_pretrain.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "gancu/config.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"
#include "gancu/session.h"

namespace gancu {
namespace {

float pixel_value(int b) {
  const BatchGather g{};
  return std::fma(float(b), g.scale, g.shift);
}

TEST(DPretrain, HistogramPixelsTakeTheBinWhoseCdfStepHoldsU) {
  Exec ex = Exec::cpu(1);
  // Mass 1/2 on 10 and 1/2 on 20.
  std::vector<float> cdf(256, 1.0f);
  std::fill(cdf.begin(), cdf.begin() + 10, 0.0f);
  std::fill(cdf.begin() + 10, cdf.begin() + 20, 0.5f);
  // u = (v + 1) / 2: 0, just under 1/2, 1/2, just under 1.
  std::vector<float> v = {-1.0f, -0.001f, 0.0f, 0.999f};
  ops::histogram_pixels<float>(ex, int64_t(v.size()), cdf.data(), BatchGather{}.scale, BatchGather{}.shift,
                               v.data());
  EXPECT_EQ(v, (std::vector<float>{pixel_value(10), pixel_value(10), pixel_value(20), pixel_value(20)}));
}

TEST(DPretrain, HistogramFakesHaveTheDataPixelHistogram) {
  Exec ex = Exec::cpu(2);
  const Dataset data = make_synthetic_dataset(8, 8, 1, 64, 3);
  const std::vector<float> cdf = pixel_cdf(data);
  ASSERT_EQ(cdf.size(), 256u);
  EXPECT_EQ(cdf[255], 1.0f);
  EXPECT_TRUE(std::is_sorted(cdf.begin(), cdf.end()));
  const int64_t n = 400000;
  std::vector<float> v(static_cast<size_t>(n));
  const int64_t step = 3;
  ops::fill_noise<float>(ex, n, v.data(), NoiseKind::Uniform, 7, kStreamPretrain, &step);
  ops::histogram_pixels<float>(ex, n, cdf.data(), BatchGather{}.scale, BatchGather{}.shift, v.data());
  std::vector<double> drawn(256, 0.0), real(256, 0.0);
  for (float x : v) {
    const int b = int(std::lround((double(x) + 1.0) * 127.5));
    ASSERT_TRUE(b >= 0 && b < 256) << x;
    ASSERT_EQ(x, pixel_value(b)) << "not a pixel value gather_batch can give";
    drawn[size_t(b)] += 1.0 / double(n);
  }
  for (uint8_t p : data.images) real[p] += 1.0 / double(data.images.size());
  double total_variation = 0;
  for (int b = 0; b < 256; ++b) total_variation += 0.5 * std::fabs(drawn[size_t(b)] - real[size_t(b)]);
  EXPECT_LT(total_variation, 0.01);
}

TEST(DPretrain, PermutePositionsMovesWholePixels) {
  Exec ex = Exec::cpu(1);
  const int rows = 3, positions = 5, channels = 2;
  std::vector<double> in(size_t(rows * positions * channels)), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = double(i);
  const std::vector<int32_t> perm = {3, 0, 4, 1, 2};
  ops::permute_positions<double>(ex, rows, positions, channels, perm.data(), in.data(), out.data());
  for (int r = 0; r < rows; ++r)
    for (int p = 0; p < positions; ++p)
      for (int c = 0; c < channels; ++c)
        EXPECT_EQ(out[size_t((r * positions + p) * channels + c)],
                  in[size_t((r * positions + perm[size_t(p)]) * channels + c)]);
}

// D of the mlp preset, alone, on real Fashion-MNIST images (Debian's package: present wherever the
// tests run): after 150 steps it tells them from either kind
// of fake (the mean of sigmoid D over the steps, which include the untrained start).
TEST(DPretrain, DLearnsToTellRealImagesFromEitherKindOfFake) {
  for (const char* fakes : {"histogram", "scrambled"}) {
    SCOPED_TRACE(fakes);
    const Config cfg = load_config("mlp", "",
                                   {{"train.batch", "32", "test"},
                                    {"train.d_pretrain_steps", "150", "test"},
                                    {"train.d_pretrain_fakes", fakes, "test"}});
    Exec ex = Exec::cpu(1);
    const RealData data(ex, "fashion-mnist", cfg.batch, cfg.seed);
    GanSession s = make_session(cfg, data.image().with_batch(cfg.batch), cfg.batch, ex);
    s.gan->initialize(ex);
    const std::vector<float> g_before(s.gan->generator().params(),
                                      s.gan->generator().params() + s.gan->generator().param_count());
    const GanMetrics m = pretrain_discriminator(ex, *s.gan, data.images(), data.source());
    std::printf("%s fakes: loss D %.4f, D(x) %.3f, D(fake) %.3f\n", fakes, m.loss_d, m.d_real, m.d_fake);
    EXPECT_GT(m.d_real, 0.8);
    EXPECT_LT(m.d_fake, 0.2);
    EXPECT_EQ(s.gan->read_step(ex), 0) << "pre-training is not a training step";
    const std::vector<float> g_after(s.gan->generator().params(),
                                     s.gan->generator().params() + s.gan->generator().param_count());
    EXPECT_EQ(g_before, g_after) << "G must not train during D's pre-training";
  }
}

TEST(DPretrain, DataWithoutPixelsIsAConfigError) {
  const Config cfg = load_config("ring8", "", {{"train.d_pretrain_steps", "10", "test"}});
  Exec ex = Exec::cpu(1);
  const RealData data(ex, "ring8", cfg.batch, cfg.seed);
  GanSession s = make_session(cfg, data.image().with_batch(cfg.batch), cfg.batch, ex);
  s.gan->initialize(ex);
  try {
    pretrain_discriminator(ex, *s.gan, data.images(), data.source());
    ADD_FAILURE() << "pre-training ran on a 2-d mixture";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train.d_pretrain_steps"), std::string::npos) << e.what();
  }
  try {
    (void)load_config("mlp", "", {{"train.d_pretrain_fakes", "noise", "test"}});
    ADD_FAILURE() << "an unknown kind of fakes was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train.d_pretrain_fakes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gancu
