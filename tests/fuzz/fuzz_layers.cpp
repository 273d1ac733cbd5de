// Layer strings ("conv out=64 k=4 s=2 p=1"), one per input line, built into a network on a small
// image or feature input, as model.generator and model.discriminator are: the parser, every
// layer's argument checks and the shape arithmetic of the graph (name=, in=, concat, add).
// The first byte picks the input. Seeds: tests/fuzz/corpus/layers.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "gancu/layer_spec.h"
#include "gancu/network.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  std::vector<std::string> layers;
  std::string line;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == '\n') {
      layers.push_back(line);
      line.clear();
    } else {
      line += char(data[i]);
    }
  }
  if (!line.empty()) layers.push_back(line);
  if (layers.size() > 64) return 0;
  for (size_t i = 0; i < layers.size(); ++i)
    gancu::fuzz::expect_clean([&] { gancu::parse_layer_spec(layers[i], "fuzz[" + std::to_string(i) + "]"); });
  const gancu::Shape input = pick % 3 == 0   ? gancu::Shape::features(1, 8)
                             : pick % 3 == 1 ? gancu::Shape::image(1, 8, 8, 1)
                                             : gancu::Shape::image(1, 16, 16, 3);
  gancu::fuzz::expect_clean([&] {
    const gancu::Network<float> net("N", 1, layers, "model.fuzz", input, gancu::InitScheme::DCGAN);
    if (net.param_count() < 0) std::abort();
  });
  return 0;
}
