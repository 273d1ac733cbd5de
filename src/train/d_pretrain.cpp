// D pre-training (d_pretrain.h): the fakes are made on the backend each step from the real batch
// (scrambled) or from Philox noise through the data's pixel CDF (histogram), so the loop runs the
// same ops on both backends and, like training, allocates nothing per step.
#include "gancu/d_pretrain.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "gancu/check.h"
#include "gancu/memory.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu {

std::vector<float> pixel_cdf(const Dataset& images) {
  if (images.images.empty())
    usage_error("train.d_pretrain_steps: D pre-training needs image data (",
                images.name.empty() ? "this data set" : images.name, " has no pixels to draw fakes from)");
  std::vector<double> counts(256, 0.0);
  for (uint8_t v : images.images) counts[v] += 1.0;
  std::vector<float> cdf(256);
  double running = 0;
  for (int b = 0; b < 256; ++b) {
    running += counts[size_t(b)];
    cdf[size_t(b)] = float(running / double(images.images.size()));
  }
  cdf[255] = 1.0f;  // whatever the rounding: every u in [0, 1) finds a bin
  return cdf;
}

GanMetrics pretrain_discriminator(const Exec& ex, Gan& gan, const Dataset& images,
                                  const Gan::RealSource& real) {
  const Config& cfg = gan.config();
  if (images.images.empty())
    usage_error("train.d_pretrain_steps: D pre-training needs image data; the 2-d mixtures have no pixels");
  const Shape image = gan.image();
  const int64_t n = image.numel();
  Buffer<float> fake(ex, size_t(n));
  const BatchGather scaling{};  // the uint8 -> [-1, 1] scaling of gather_batch
  // Only what the chosen fakes need: the CDF is a pass over every pixel of the data set.
  Gan::FakeSource make_fake;
  Buffer<float> cdf;
  Buffer<int32_t> perm;
  if (cfg.d_pretrain_fakes == "histogram") {
    cdf = Buffer<float>(ex, pixel_cdf(images));
    // Each rank of a data-parallel run draws fakes of its own.
    const uint64_t seed = gan.shard().whole() ? cfg.seed : rank_seed(cfg.seed, world().rank());
    make_fake = [&, seed](const Exec& e, const float*, float* out) {
      ops::fill_noise<float>(e, n, out, NoiseKind::Uniform, seed, kStreamPretrain, gan.data_step_counter());
      ops::histogram_pixels<float>(e, n, cdf.data(), scaling.scale, scaling.shift, out);
    };
  } else {  // scrambled: one fixed permutation of the pixel positions, the same for every image
    std::vector<int32_t> order(size_t(image.h) * size_t(image.w));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 shuffle_rng(cfg.seed);
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    perm = Buffer<int32_t>(ex, order);
    make_fake = [&](const Exec& e, const float* r, float* out) {
      ops::permute_positions<float>(e, image.n, int64_t(image.h) * image.w, image.c, perm.data(), r, out);
    };
  }
  gan.restart_metrics(ex);
  for (int64_t k = 0; k < cfg.d_pretrain_steps; ++k) gan.pretrain_d_step(ex, real, make_fake, fake.data());
  const GanMetrics m = gan.read_pretrain_metrics(ex, cfg.d_pretrain_steps);
  gan.restart_metrics(ex);
  return m;
}

}  // namespace gancu
