// What users have on disk keeps working across the model-graph rewrite: a checkpoint written by
// gancu before it loads and samples the same images, and every preset builds the same tensors
// with the same initial values (tests/data/legacy/README.md says how each file was made).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gancu/data.h"
#include "gancu/image_io.h"
#include "gancu/memory.h"
#include "gancu/session.h"

namespace gancu {
namespace {

const std::string kLegacy = std::string(GANCU_SOURCE_DIR) + "/tests/data/legacy/";

TEST(Legacy, ACheckpointFromBeforeTheGraphLoadsAndSamplesTheSameImages) {
  Exec ex = Exec::cpu(1);
  TrainedGan t = load_trained(ex, kLegacy + "tiny_step3.safetensors");
  EXPECT_EQ(t.session.gan->read_step(t.ex), 3);
  // `gancu sample --n 16` from the same checkpoint, written then.
  const Dataset want = read_idx_images(kLegacy + "samples.idx");
  ASSERT_EQ(want.count, 16);
  const std::vector<uint8_t> got = float_to_u8(draw_samples(t.ex, *t.session.gan, 16, t.cfg.seed, 1));
  ASSERT_EQ(got.size(), want.images.size());
  int differ = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    // Identical up to a float rounding at a quantization boundary.
    EXPECT_LE(std::abs(int(got[i]) - int(want.images[i])), 1) << "pixel " << i;
    differ += got[i] != want.images[i];
  }
  EXPECT_LE(differ, 4) << "of " << got.size() << " pixels";
}

TEST(Legacy, EveryPresetBuildsTheSameTensorsWithTheSameInitialValues) {
  std::ifstream in(kLegacy + "preset_params.json");
  ASSERT_TRUE(in) << "tests/data/legacy/preset_params.json";
  const nlohmann::json golden = nlohmann::json::parse(in);
  Exec ex = Exec::cpu(1);
  for (const auto& [preset, tensors] : golden.items()) {
    SCOPED_TRACE(preset);
    const Config cfg = load_config(preset, "", {});
    GanSession s = make_session(cfg, generator_image(cfg).with_batch(2), 2, ex);
    s.gan->initialize(ex);
    std::vector<std::string> names;
    size_t k = 0;
    for (Network<float>* net : {&s.gan->generator(), &s.gan->discriminator()}) {
      std::vector<float> p(size_t(net->param_count())), st(size_t(net->state_count()));
      copy_to_host(ex, p.data(), net->params(), p.size() * sizeof(float));
      copy_to_host(ex, st.data(), net->states(), st.size() * sizeof(float));
      for (const NetworkTensor& t : net->tensors()) {
        if (t.kind == NetworkTensor::Counter) continue;
        ASSERT_LT(k, tensors.size()) << "more tensors than before: " << t.name;
        const auto& want = tensors[k++];
        EXPECT_EQ(t.name, want["name"].get<std::string>());
        EXPECT_EQ(t.shape, want["shape"].get<std::vector<int>>()) << t.name;
        const float* v = (t.kind == NetworkTensor::Param ? p.data() : st.data()) + t.offset;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < t.count; ++i) {
          sum += v[i];
          sq += double(v[i]) * v[i];
        }
        // The golden file prints 9 significant digits of the same double sums.
        EXPECT_NEAR(sum, want["sum"].get<double>(), 1e-8 * std::max(1.0, std::abs(sum))) << t.name;
        EXPECT_NEAR(sq, want["sumsq"].get<double>(), 1e-8 * std::max(1.0, sq)) << t.name;
      }
    }
    EXPECT_EQ(k, tensors.size()) << "fewer tensors than before";
  }
}

}  // namespace
}  // namespace gancu
