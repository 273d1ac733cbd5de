#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/rng.h"

namespace gancu {

Dataset make_stacked_mnist(const Dataset& mnist, int64_t count, uint64_t seed) {
  if (mnist.c != 1 || mnist.count < 1)
    runtime_error(mnist.name, ": stacked MNIST needs single-channel images");
  if (count < 1) runtime_error("stacked MNIST: count must be positive");
  Dataset d;
  d.name = "stacked-mnist";
  d.h = mnist.h;
  d.w = mnist.w;
  d.c = 3;
  d.count = count;
  d.images.resize(size_t(count) * d.image_bytes());
  const size_t pixels = size_t(mnist.h) * mnist.w;
  for (int64_t i = 0; i < count; ++i) {
    // One Philox block per stacked image: its first three words pick the three digits.
    const Philox4 r = philox_block(seed, kStreamData, 0, uint32_t(i));
    uint8_t* dst = d.images.data() + size_t(i) * d.image_bytes();
    for (int ch = 0; ch < 3; ++ch) {
      const uint8_t* src = mnist.image(int64_t(r.v[ch] % uint32_t(mnist.count)));
      for (size_t p = 0; p < pixels; ++p) dst[p * 3 + ch] = src[p];
    }
  }
  return d;
}

}  // namespace gancu
