// Inception-v3 and the scores on its features: the architecture against torchvision's parameter
// count, the weights file (PyTorch names), the cache of reference features, the Inception score's
// splits and the KID against their definitions, and bad input. That the network computes what
// torchvision's and pytorch-fid's compute is checked in tools/test_tools.py
// (InceptionAgainstPyTorch), with the same random weights on both sides.
#include "gancu/inception.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/safetensors.h"

namespace gancu {
namespace {

using testing_cli::expect;
using testing_cli::run;
using testing_cli::temp;

// torchvision.models.inception_v3(weights=None, aux_logits=False): sum of p.numel() over its
// parameters (conv weights, batch norm weights and biases, fc) = 23,834,568.
constexpr int64_t kTorchvisionParams = 23834568;

// A weights file as tools/convert_inception.py writes it, from a randomly initialized network.
void write_random_weights(const std::string& path, InceptionVariant variant, Shape image, uint64_t seed) {
  const Exec ex = Exec::cpu();
  InceptionNet net(ex, variant, image, 1, seed);
  std::map<std::string, TensorData> ours, torch_named;
  export_network(ex, net.network(), ours);
  const InceptionLayers layers = inception_v3_layers(variant, image);
  for (auto& [name, t] : ours) {
    const size_t a = name.find('.'), b = name.find('.', a + 1);
    torch_named[layers.modules.at(std::stoul(name.substr(a + 1, b - a - 1))) + name.substr(b)] = t;
  }
  write_safetensors(path, torch_named,
                    {{"format", "gancu-inception/1"}, {"variant", inception_variant_name(variant)}});
}

TEST(Inception, ArchitectureHasTorchvisionsParameterCount) {
  const Exec ex = Exec::cpu();
  for (Shape image : {Shape::image(0, 299, 299, 3), Shape::image(0, 28, 28, 1)}) {
    InceptionNet tv(ex, InceptionVariant::Torchvision, image, 1);
    EXPECT_EQ(tv.network().trainable_count(), kTorchvisionParams) << image.str();
    EXPECT_EQ(tv.network().value_shape(tv.network().value_id("pool3")),
              Shape::features(1, kInceptionFeatures));
    EXPECT_EQ(tv.network().output_shape(), Shape::features(1, 1000));
  }
  // The FID network: 1,008 logits, so 8 more rows of fc.
  InceptionNet fid(ex, InceptionVariant::Fid, Shape::image(0, 32, 32, 3), 1);
  EXPECT_EQ(fid.network().trainable_count(), kTorchvisionParams + 8 * (kInceptionFeatures + 1));
  EXPECT_EQ(fid.classes(), 1008);
}

TEST(Inception, FidVariantDiffersFromTorchvisionWhereThePaperToolsDo) {
  const auto count = [](const InceptionLayers& l, const std::string& needle) {
    int n = 0;
    for (const std::string& s : l.layers) n += s.find(needle) != std::string::npos;
    return n;
  };
  const Shape image = Shape::image(0, 64, 64, 3);
  const InceptionLayers tv = inception_v3_layers(InceptionVariant::Torchvision, image);
  const InceptionLayers fid = inception_v3_layers(InceptionVariant::Fid, image);
  ASSERT_EQ(tv.layers.size(), fid.layers.size());
  // Pooling branches: 3 A + 4 C + 2 E blocks. torchvision counts the padding in all nine; the FID
  // network in none of its averages, and its last E block takes a maximum.
  EXPECT_EQ(count(tv, "avgpool k=3 s=1 p=1 include_pad=true"), 9);
  EXPECT_EQ(count(fid, "avgpool k=3 s=1 p=1 include_pad=false"), 8);
  EXPECT_EQ(count(fid, "maxpool k=3 s=1 p=1 in=Mixed_7b name=Mixed_7c_pool"), 1);
  EXPECT_EQ(count(tv, "resize h=299 w=299"), 1);
  EXPECT_EQ(count(inception_v3_layers(InceptionVariant::Fid, Shape::image(0, 299, 299, 3)), "resize"), 0);
}

TEST(Inception, WeightsFileLoadsAndFeaturesAreCachedPerImagesAndWeights) {
  const Shape image = Shape::image(0, 12, 12, 3);
  const std::string weights = temp("inception_weights") + ".safetensors";
  write_random_weights(weights, InceptionVariant::Torchvision, image, 5);
  const std::string cache = temp("inception_cache");
  setenv("GANCU_CACHE_DIR", cache.c_str(), 1);

  Dataset data = make_synthetic_dataset(12, 12, 3, 3, 1);
  data.name = "three images";
  const Exec ex = Exec::cpu();
  InceptionJudge judge(ex, weights, 2);  // batch 2: the third image runs in a second, partial batch
  std::ostringstream log1, log2, log3;
  const std::vector<float> first = judge.reference_features(data, 100, log1);
  ASSERT_EQ(first.size(), size_t(3) * kInceptionFeatures);
  EXPECT_EQ(log1.str().find("from the cache"), std::string::npos) << log1.str();
  double total = 0;
  for (float v : first) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_GE(v, 0.0f);  // an average of ReLU outputs
    total += v;
  }
  EXPECT_GT(total, 0.0);
  // The three images give three different feature vectors.
  EXPECT_NE(std::vector<float>(first.begin(), first.begin() + kInceptionFeatures),
            std::vector<float>(first.begin() + kInceptionFeatures, first.begin() + 2 * kInceptionFeatures));

  const std::vector<float> again = judge.reference_features(data, 100, log2);
  EXPECT_NE(log2.str().find("from the cache"), std::string::npos) << log2.str();
  EXPECT_EQ(again, first);

  // One changed pixel is another set of images: featurized again, and its features differ.
  data.images[5] ^= 0x40;
  const std::vector<float> changed = judge.reference_features(data, 100, log3);
  EXPECT_EQ(log3.str().find("from the cache"), std::string::npos) << log3.str();
  EXPECT_NE(changed, first);
  unsetenv("GANCU_CACHE_DIR");
}

TEST(Inception, ForeignOrIncompleteWeightsFilesAreRefusedByName) {
  const Exec ex = Exec::cpu();
  const Shape image = Shape::image(0, 8, 8, 1);
  const std::string foreign = temp("not_inception") + ".safetensors";
  std::map<std::string, TensorData> t;
  const float one = 1;
  t["fc.weight"] = make_tensor<float>({1}, &one);
  write_safetensors(foreign, t, {{"format", "gancu-checkpoint/1"}});
  try {
    InceptionNet::load(ex, foreign, image);
    FAIL() << "a checkpoint loaded as Inception weights";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("convert_inception.py"), std::string::npos) << e.what();
  }
  // The right format with a tensor missing names the PyTorch tensor.
  const std::string full = temp("inception_full") + ".safetensors";
  write_random_weights(full, InceptionVariant::Fid, image, 1);
  SafeTensors f = read_safetensors(full);
  f.tensors.erase("Mixed_6c.branch7x7dbl_4.bn.running_var");
  const std::string partial = temp("inception_partial") + ".safetensors";
  write_safetensors(partial, f.tensors, f.metadata);
  try {
    InceptionNet::load(ex, partial, image);
    FAIL() << "a file without a tensor loaded";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("'Mixed_6c.branch7x7dbl_4.bn.running_var' is missing"),
              std::string::npos)
        << e.what();
  }
  f.metadata["variant"] = "tensorflow";
  write_safetensors(partial, f.tensors, f.metadata);
  EXPECT_THROW(InceptionNet::load(ex, partial, image), RuntimeError);
}

TEST(InceptionScore, SplitsFollowTheDefinition) {
  // 20 one-hot rows cycling through 10 classes: every split of 10 covers all classes evenly, so
  // each split scores exactly 10.
  std::vector<float> p(20 * 10, 0.0f);
  for (int i = 0; i < 20; ++i) p[size_t(i * 10 + i % 10)] = 1.0f;
  MeanSpread s = inception_score_splits(p.data(), 20, 10, 2);
  EXPECT_NEAR(s.mean, 10.0, 1e-9);
  EXPECT_NEAR(s.std, 0.0, 1e-9);
  // The first half all class 0 (score 1), the second half spread (score 10): mean 5.5, std 4.5.
  for (int i = 0; i < 10; ++i) {
    std::fill(p.begin() + i * 10, p.begin() + i * 10 + 10, 0.0f);
    p[size_t(i * 10)] = 1.0f;
  }
  s = inception_score_splits(p.data(), 20, 10, 2);
  EXPECT_NEAR(s.mean, 5.5, 1e-9);
  EXPECT_NEAR(s.std, 4.5, 1e-9);
  // One split is the whole set's score.
  EXPECT_NEAR(inception_score_splits(p.data(), 20, 10, 1).mean, inception_score(p.data(), 20, 10), 1e-12);
  EXPECT_THROW(inception_score_splits(p.data(), 20, 10, 21), RuntimeError);
  p[3] = -1.0f;  // not a probability row
  EXPECT_THROW(inception_score_splits(p.data(), 20, 10, 2), RuntimeError);
}

// The unbiased MMD^2 under (x.y / d + 1)^3, in double over all rows.
double mmd_reference(const std::vector<float>& a, int64_t na, const std::vector<float>& b, int64_t nb,
                     int d) {
  const auto k = [&](const float* x, const float* y) {
    double dot = 0;
    for (int i = 0; i < d; ++i) dot += double(x[i]) * y[i];
    return std::pow(dot / d + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < na; ++i)
    for (int64_t j = 0; j < na; ++j)
      if (i != j) xx += k(&a[size_t(i * d)], &a[size_t(j * d)]);
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t j = 0; j < nb; ++j)
      if (i != j) yy += k(&b[size_t(i * d)], &b[size_t(j * d)]);
  for (int64_t i = 0; i < na; ++i)
    for (int64_t j = 0; j < nb; ++j) xy += k(&a[size_t(i * d)], &b[size_t(j * d)]);
  return xx / double(na * (na - 1)) + yy / double(nb * (nb - 1)) - 2 * xy / double(na * nb);
}

std::vector<float> gaussian_rows(int64_t n, int d, float shift, uint64_t seed) {
  std::vector<float> v(size_t(n * d));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    // Sum of uniforms: roughly normal, and reproducible without <random>'s distributions.
    double u = 0;
    for (int i = 0; i < 12; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      u += double(s >> 11) / double(1ull << 53);
    }
    x = float(u - 6.0) + shift;
  }
  return v;
}

TEST(KernelInceptionDistance, MatchesItsDefinitionAndSeparatesDistributions) {
  const int d = 16;
  const auto a = gaussian_rows(30, d, 0.0f, 1), b = gaussian_rows(40, d, 0.0f, 2),
             c = gaussian_rows(40, d, 1.0f, 3);
  // Subsets as large as the smaller set: every subset of `a` is all of it; of b, 30 of its 40 rows.
  // With both sets of 30 rows the estimate is exact (and identical for every subset).
  const std::vector<float> b30(b.begin(), b.begin() + 30 * d);
  const MeanSpread exact = kernel_inception_distance(a.data(), 30, b30.data(), 30, d, 5, 1000);
  EXPECT_NEAR(exact.mean, mmd_reference(a, 30, b30, 30, d),
              1e-6 * std::abs(mmd_reference(a, 30, b30, 30, d)) + 1e-9);
  EXPECT_LE(exact.std, 1e-6 * std::abs(exact.mean) + 1e-9);  // float sums in other row orders
  // Same distribution: near 0 (unbiased: either sign); a shifted one: clearly positive.
  const MeanSpread same = kernel_inception_distance(a.data(), 30, b.data(), 40, d, 20, 25);
  const MeanSpread shifted = kernel_inception_distance(a.data(), 30, c.data(), 40, d, 20, 25);
  EXPECT_GT(same.std, 0.0);  // 25 of 30 and 25 of 40 rows: the subsets differ
  EXPECT_GT(shifted.mean, 10 * std::abs(same.mean));
  EXPECT_GT(shifted.mean, 0.5);
  // The subsets follow the seed.
  EXPECT_EQ(kernel_inception_distance(a.data(), 30, b.data(), 40, d, 3, 25, 9).mean,
            kernel_inception_distance(a.data(), 30, b.data(), 40, d, 3, 25, 9).mean);
  EXPECT_NE(kernel_inception_distance(a.data(), 30, b.data(), 40, d, 3, 25, 9).mean,
            kernel_inception_distance(a.data(), 30, b.data(), 40, d, 3, 25, 10).mean);
  EXPECT_THROW(kernel_inception_distance(a.data(), 1, b.data(), 40, d), RuntimeError);
}

TEST(InceptionCli, BadInputGetsAClearMessageAndExitCode) {
  const std::string samples = temp("inception_samples") + ".idx";
  const std::vector<uint8_t> px(size_t(2) * 8 * 8, 100);
  write_idx_images(samples, px.data(), 2, 8, 8, 1);
  expect(run("eval --samples " + samples + " --reference mnist"), 2, {"--inception"});
  expect(run("eval --samples " + samples + " --inception /nonexistent/w.safetensors"), 1,
         {"/nonexistent/w.safetensors", "convert_inception.py"});
  expect(run("eval --samples " + samples + " --inception x --reference-n 1"), 2, {"--reference-n"});
  // A reference set of another image size is refused, naming both sizes.
  const std::string weights = temp("inception_cli_weights") + ".safetensors";
  write_random_weights(weights, InceptionVariant::Fid, Shape::image(0, 8, 8, 1), 2);
  const std::string other = temp("inception_other") + ".idx";
  const std::vector<uint8_t> big(size_t(2) * 9 * 9, 100);
  write_idx_images(other, big.data(), 2, 9, 9, 1);
  expect(run("eval --samples " + samples + " --inception " + weights + " --reference " + other), 2,
         {"9x9x1", "8x8x1"});
}

// `gancu eval --run --inception`: the samples against the run's own data set, whose features are
// cached for the next evaluation.
TEST(InceptionCli, RunIsJudgedAgainstItsOwnDataSetOnce) {
  const std::string dir = temp("inception_run");
  expect(run("train --preset mlp --backend cpu --data mnist --batch 8 --steps 2 --out " + dir), 0,
         {"step 2/2"});
  const std::string weights = temp("inception_run_weights") + ".safetensors";
  write_random_weights(weights, InceptionVariant::Fid, Shape::image(0, 28, 28, 1), 3);
  const std::string env = "GANCU_CACHE_DIR=" + temp("inception_run_cache") + " ";
  const std::string eval =
      env + GANCU_BINARY + " eval --run " + dir + " --inception " + weights + " --n 2 --reference-n 3 --json";
  const testing_cli::Result first = testing_cli::run_command(eval);
  expect(first, 0,
         {"featurizing 3 reference images of mnist", "\"inception/fid\"", "\"inception/variant\":\"fid\""});
  const nlohmann::json j = nlohmann::json::parse(first.output.substr(first.output.rfind("{")));
  EXPECT_EQ(j["inception/samples"], 2);
  EXPECT_EQ(j["inception/reference"], 3);
  EXPECT_TRUE(std::isfinite(j["inception/fid"].get<double>()));
  const testing_cli::Result second = testing_cli::run_command(eval);
  expect(second, 0, {"from the cache"});
  EXPECT_EQ(nlohmann::json::parse(second.output.substr(second.output.rfind("{")))["inception/fid"],
            j["inception/fid"]);
}

}  // namespace
}  // namespace gancu
