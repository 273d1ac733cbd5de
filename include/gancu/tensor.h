// Shapes of the activations that flow between layers.
//
// Every activation is a 4-d NHWC tensor: images are [N, H, W, C] and feature vectors are
// [N, 1, 1, C]. One layout for both means that Flatten and Reshape are free (they only relabel a
// buffer) and that the CPU and CUDA backends hold tensors element for element the same.
#pragma once

#include <cstdint>
#include <string>

namespace gancu {

struct Shape {
  int n = 0, h = 1, w = 1, c = 0;

  static Shape features(int n, int c) { return {n, 1, 1, c}; }
  static Shape image(int n, int h, int w, int c) { return {n, h, w, c}; }

  int64_t per_sample() const { return int64_t(h) * w * c; }
  int64_t numel() const { return int64_t(n) * per_sample(); }
  bool is_features() const { return h == 1 && w == 1; }
  Shape with_batch(int batch) const { return {batch, h, w, c}; }
  bool operator==(const Shape& o) const { return n == o.n && h == o.h && w == o.w && c == o.c; }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "64x7x7x256" or "64x100" for features
};

}  // namespace gancu
