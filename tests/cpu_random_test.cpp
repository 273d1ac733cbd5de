// Philox (rng.h) against the Random123 known answers, the noise op, the Feistel permutation and
// the batch gather of the CPU backend.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "cpu_test_util.h"
#include "gancu/ops.h"
#include "gancu/rng.h"

namespace gancu::test {
namespace {

// Random123's kat_vectors for philox4x32_10 (counter, key -> output).
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const Philox4 r = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out.v[i]) << "word " << i;
  }
}

TEST(CpuFillNoise, EqualsTheScalarStreamBitForBit) {
  CpuEnv env;
  const int64_t n = 1001, step = 123456789012LL;  // a step above 2^32 uses both counter words
  std::vector<float> normal(static_cast<size_t>(n)), uniform(static_cast<size_t>(n));
  ops::fill_noise<float>(env.ex, n, normal.data(), NoiseKind::Normal, 42, kStreamNoiseD, &step);
  ops::fill_noise<float>(env.ex, n, uniform.data(), NoiseKind::Uniform, 42, kStreamNoiseD, &step);
  for (int64_t i = 0; i < n; ++i) {
    const float zn = philox_normal(42, kStreamNoiseD, uint64_t(step), uint64_t(i));
    const float zu = philox_uniform(42, kStreamNoiseD, uint64_t(step), uint64_t(i), -1.0f, 1.0f);
    ASSERT_EQ(0, std::memcmp(&normal[size_t(i)], &zn, sizeof(float))) << i;
    ASSERT_EQ(0, std::memcmp(&uniform[size_t(i)], &zu, sizeof(float))) << i;
  }
  std::vector<double> nd(static_cast<size_t>(n));
  ops::fill_noise<double>(env.ex, n, nd.data(), NoiseKind::Normal, 42, kStreamNoiseD, &step);
  EXPECT_EQ(nd, cast<double>(normal)) << "double noise is the float stream widened";
}

TEST(CpuFillNoise, IsDeterministicAndDiffersAcrossStepsAndStreams) {
  CpuEnv env;
  const int64_t n = 4096, s0 = 7, s1 = 8;
  auto draw = [&](uint64_t seed, uint32_t stream, const int64_t* step) {
    std::vector<float> v(static_cast<size_t>(n));
    ops::fill_noise<float>(env.ex, n, v.data(), NoiseKind::Normal, seed, stream, step);
    return v;
  };
  const auto a = draw(1, kStreamNoiseD, &s0);
  EXPECT_EQ(a, draw(1, kStreamNoiseD, &s0));
  EXPECT_NE(a, draw(1, kStreamNoiseD, &s1));
  EXPECT_NE(a, draw(1, kStreamNoiseG, &s0));
  EXPECT_NE(a, draw(2, kStreamNoiseD, &s0));
}

TEST(CpuFillNoise, MomentsAndRange) {
  CpuEnv env;
  const int64_t n = 100000, step = 3;
  std::vector<double> v(static_cast<size_t>(n));
  auto moments = [&](double& mean, double& var) {
    mean = 0;
    for (double x : v) mean += x;
    mean /= double(n);
    var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    var /= double(n - 1);
  };
  double mean, var;
  ops::fill_noise<double>(env.ex, n, v.data(), NoiseKind::Normal, 5, kStreamNoiseD, &step);
  moments(mean, var);
  // Bounds of 5 standard errors: sd(mean) = 1/sqrt(n) ~ 0.0032, sd(var) = sqrt(2/n) ~ 0.0045.
  EXPECT_NEAR(mean, 0.0, 0.016);
  EXPECT_NEAR(var, 1.0, 0.023);
  ops::fill_noise<double>(env.ex, n, v.data(), NoiseKind::Uniform, 5, kStreamNoiseD, &step);
  moments(mean, var);
  for (double x : v) {
    ASSERT_GE(x, -1.0);
    ASSERT_LT(x, 1.0);
  }
  // U[-1, 1): mean 0 (sd 0.0018), variance 1/3 (sd ~0.0013).
  EXPECT_NEAR(mean, 0.0, 0.0092);
  EXPECT_NEAR(var, 1.0 / 3.0, 0.0067);
}

TEST(Feistel, IsABijectionAndEpochsDiffer) {
  for (uint32_t n : {1u, 2u, 7u, 1000u, 60000u})
    for (uint32_t epoch : {0u, 1u, 77u}) {
      std::vector<char> seen(n, 0);
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t j = feistel_permute(i, n, 0x1234567890abcdefULL, epoch);
        ASSERT_LT(j, n);
        ASSERT_FALSE(seen[j]) << "n=" << n << " epoch=" << epoch << ": " << j << " hit twice";
        seen[j] = 1;
      }
    }
  int moved = 0;
  for (uint32_t i = 0; i < 1000; ++i)
    moved += feistel_permute(i, 1000, 9, 0) != feistel_permute(i, 1000, 9, 1);
  EXPECT_GT(moved, 900) << "each epoch must have its own order";
}

TEST(CpuGatherBatch, EachEpochVisitsImagesOnceAndScales) {
  CpuEnv env;
  // Image i stores its index in its first two bytes; labels are i % 10.
  const int64_t num = 1000, elems = 3;
  const int batch = 64;  // 15 batches per epoch; 40 images left over per epoch
  std::vector<uint8_t> images(size_t(num * elems)), labels(static_cast<size_t>(num));
  for (int64_t i = 0; i < num; ++i) {
    images[size_t(i * elems)] = uint8_t(i & 255);
    images[size_t(i * elems + 1)] = uint8_t(i >> 8);
    images[size_t(i * elems + 2)] = 255;
    labels[size_t(i)] = uint8_t(i % 10);
  }
  const BatchGather g{num, elems, batch, 2024, 2.0f / 255.0f, -1.0f};
  std::vector<float> out(size_t(batch * elems));
  std::vector<int32_t> lab(static_cast<size_t>(batch));
  const int64_t per_epoch = num / batch;
  std::vector<std::set<int64_t>> epochs(2);
  for (int64_t step = 0; step < 2 * per_epoch; ++step) {
    ops::gather_batch<float>(env.ex, g, images.data(), &step, out.data());
    ops::gather_labels<float>(env.ex, g, labels.data(), &step, lab.data());
    for (int i = 0; i < batch; ++i) {
      const float* px = &out[size_t(i * elems)];
      // Undo the scaling: u8 = (v + 1) * 255 / 2, exact to well under half a level.
      const int64_t lo = std::lround((px[0] + 1.0f) * 127.5f), hi = std::lround((px[1] + 1.0f) * 127.5f);
      const int64_t img = lo + 256 * hi;
      ASSERT_LT(img, num);
      EXPECT_NEAR(px[0], double(images[size_t(img * elems)]) * (2.0 / 255.0) - 1.0, 1e-6);
      EXPECT_NEAR(px[2], 1.0, 1e-6) << "255 maps to 1";
      EXPECT_EQ(lab[size_t(i)], int32_t(img % 10)) << "labels follow the same images";
      EXPECT_TRUE(epochs[size_t(step / per_epoch)].insert(img).second)
          << "image " << img << " twice in an epoch";
    }
  }
  EXPECT_EQ(epochs[0].size(), size_t(num - num % batch));
  EXPECT_NE(epochs[0], epochs[1]) << "the dropped remainder changes with the epoch";
}

TEST(CpuGatherBatch, RejectsABatchLargerThanTheDataSet) {
  CpuEnv env;
  const std::vector<uint8_t> images(10 * 4);
  std::vector<float> out(11 * 4);
  const BatchGather g{10, 4, 11, 1};
  const int64_t step = 0;
  EXPECT_THROW(ops::gather_batch<float>(env.ex, g, images.data(), &step, out.data()), RuntimeError);
}

}  // namespace
}  // namespace gancu::test
