#include <cmath>

#include "gancu/image_io.h"

namespace gancu {

std::vector<uint8_t> render_scatter(const float* points, int64_t n, const float* centres, int m, float extent,
                                    int size) {
  std::vector<uint8_t> img(size_t(size) * size, 0);
  const auto pixel = [&](float x, float y, int* px, int* py) {
    *px = int(std::floor((x / extent + 1.0f) * 0.5f * float(size)));
    *py = int(std::floor((1.0f - y / extent) * 0.5f * float(size)));  // y up
    return *px >= 0 && *px < size && *py >= 0 && *py < size;
  };
  for (int i = 0; i < m && centres; ++i) {
    int cx, cy;
    if (!pixel(centres[2 * i], centres[2 * i + 1], &cx, &cy)) continue;
    for (int d = -4; d <= 4; ++d) {
      if (cx + d >= 0 && cx + d < size) img[size_t(cy) * size + size_t(cx + d)] = 96;
      if (cy + d >= 0 && cy + d < size) img[size_t(cy + d) * size + size_t(cx)] = 96;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    int px, py;
    if (std::isfinite(points[2 * i]) && std::isfinite(points[2 * i + 1]) &&
        pixel(points[2 * i], points[2 * i + 1], &px, &py))
      img[size_t(py) * size + size_t(px)] = 255;
  }
  return img;
}

}  // namespace gancu
