// Channel conversion and antialiased resampling of decoded images (resize.h).
#include "gancu/resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gancu/check.h"

namespace gancu {

Image convert_channels(const Image& in, int c) {
  GANCU_CHECK(c == 1 || c == 3, "convert_channels: to ", c, " channels");
  GANCU_CHECK(in.c >= 1 && in.c <= 4, "convert_channels: from ", in.c, " channels");
  const bool in_colour = in.c >= 3;
  if ((c == 3) == in_colour && in.c == c) return in;
  Image out{in.h, in.w, c, std::vector<uint8_t>(size_t(in.h) * in.w * c)};
  const size_t n = size_t(in.h) * in.w;
  for (size_t p = 0; p < n; ++p) {
    const uint8_t* s = &in.pixels[p * size_t(in.c)];
    uint8_t* d = &out.pixels[p * size_t(c)];
    if (c == 3) {
      if (in_colour) {
        d[0] = s[0], d[1] = s[1], d[2] = s[2];
      } else {
        d[0] = d[1] = d[2] = s[0];
      }
    } else {
      d[0] = in_colour ? uint8_t((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 32768u) >> 16) : s[0];
    }
  }
  return out;
}

namespace {

// The taps of one output position along one axis: input indices [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

// PIL's precompute_coeffs for the triangle filter (support 1): centre (i + 0.5) * scale, support
// scaled by the reduction factor, weights normalized to sum 1.
std::vector<Taps> triangle_taps(int in_size, int out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  std::vector<Taps> taps(static_cast<size_t>(out_size));
  for (int i = 0; i < out_size; ++i) {
    const double centre = (i + 0.5) * scale;
    const int lo = std::max(int(centre - support + 0.5), 0);
    const int hi = std::min(int(centre + support + 0.5), in_size);
    Taps& t = taps[size_t(i)];
    t.first = lo;
    double total = 0;
    std::vector<double> w;
    for (int j = lo; j < hi; ++j) {
      const double x = std::fabs((j - centre + 0.5) / filter_scale);
      const double v = x < 1.0 ? 1.0 - x : 0.0;
      w.push_back(v);
      total += v;
    }
    for (double v : w) t.weights.push_back(float(total > 0 ? v / total : 0.0));
  }
  return taps;
}

}  // namespace

Image resize_bilinear_antialiased(const Image& in, int h, int w) {
  GANCU_CHECK(h > 0 && w > 0 && in.h > 0 && in.w > 0, "resize: ", in.h, "x", in.w, " to ", h, "x", w);
  if (in.h == h && in.w == w) return in;
  const int c = in.c;
  const std::vector<Taps> tx = triangle_taps(in.w, w), ty = triangle_taps(in.h, h);
  // Horizontal pass: [in.h, w, c] in float.
  std::vector<float> mid(size_t(in.h) * w * c);
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < w; ++x) {
      const Taps& t = tx[size_t(x)];
      for (int k = 0; k < c; ++k) {
        float acc = 0;
        for (size_t j = 0; j < t.weights.size(); ++j)
          acc += t.weights[j] * float(in.pixels[(size_t(y) * in.w + size_t(t.first) + j) * c + size_t(k)]);
        mid[(size_t(y) * w + size_t(x)) * c + size_t(k)] = acc;
      }
    }
  // Vertical pass, rounded to the nearest byte.
  Image out{h, w, c, std::vector<uint8_t>(size_t(h) * w * c)};
  for (int y = 0; y < h; ++y) {
    const Taps& t = ty[size_t(y)];
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) {
        float acc = 0;
        for (size_t j = 0; j < t.weights.size(); ++j)
          acc += t.weights[j] * mid[((size_t(t.first) + j) * w + size_t(x)) * c + size_t(k)];
        out.pixels[(size_t(y) * w + size_t(x)) * c + size_t(k)] =
            uint8_t(std::clamp(std::lround(acc), 0L, 255L));
      }
  }
  return out;
}

Image resize_and_center_crop(const Image& in, int size) {
  GANCU_CHECK(size > 0, "resize_and_center_crop: size ", size);
  // torchvision's Resize(int): the shorter side becomes `size`, the longer int(size * long / short).
  int rh = size, rw = size;
  if (in.h < in.w)
    rw = int(int64_t(size) * in.w / in.h);
  else if (in.w < in.h)
    rh = int(int64_t(size) * in.h / in.w);
  const Image resized = resize_bilinear_antialiased(in, rh, rw);
  // Python's round() (torchvision's): halves to even, which nearbyint does in the default mode.
  const int top = int(std::nearbyint((rh - size) / 2.0)), left = int(std::nearbyint((rw - size) / 2.0));
  if (top == 0 && left == 0 && rh == size && rw == size) return resized;
  Image out{size, size, in.c, std::vector<uint8_t>(size_t(size) * size * in.c)};
  const size_t row = size_t(size) * in.c;
  for (int y = 0; y < size; ++y)
    std::copy_n(&resized.pixels[((size_t(top) + y) * rw + size_t(left)) * in.c], row,
                &out.pixels[size_t(y) * row]);
  return out;
}

}  // namespace gancu
