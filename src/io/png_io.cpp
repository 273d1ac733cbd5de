// PNG reading and writing, sample grids and the float -> pixel mapping.
//
// libpng's "simplified API" (png_image_*, libpng >= 1.6) is used on purpose: it reports errors
// through png_image::message instead of longjmp, so no setjmp crosses C++ objects here, and it
// converts any bit depth, palette and transparency to plain 8-bit channels on read.
// Files are encoded in memory and written with atomic_write, so a failure leaves nothing behind.
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"

namespace gancu {

namespace {

// Larger images than this are refused before allocating: a corrupt or hostile header can claim
// up to 2^31 x 2^31 pixels. 1 GiB is far above any grid or data-set image.
constexpr uint64_t kMaxImageBytes = uint64_t(1) << 30;

// c must be 1..4 (checked by the callers); note PNG_FORMAT_GRAY is 0.
png_uint_32 png_format_for_channels(int c) {
  switch (c) {
    case 1:
      return PNG_FORMAT_GRAY;
    case 2:
      return PNG_FORMAT_GA;
    case 3:
      return PNG_FORMAT_RGB;
    default:
      return PNG_FORMAT_RGBA;
  }
}

}  // namespace

void write_png(const std::string& path, const uint8_t* hwc, int h, int w, int c) {
  if (c < 1 || c > 4)
    runtime_error(path, ": cannot write PNG with ", c, " channels (1, 2, 3 or 4 are possible)");
  if (h <= 0 || w <= 0 || uint64_t(h) * uint64_t(w) * uint64_t(c) > kMaxImageBytes)
    runtime_error(path, ": cannot write PNG of ", h, "x", w, "x", c, ": empty or too large");
  GANCU_CHECK(hwc != nullptr, "write_png(", path, "): null pixels");

  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(w);
  image.height = static_cast<png_uint_32>(h);
  image.format = png_format_for_channels(c);

  // PNG_IMAGE_PNG_SIZE_MAX bounds the encoded size (stored blocks plus chunk overhead), so one
  // encoding pass into a buffer of that size always fits.
  png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX(image);
  std::vector<uint8_t> encoded(size);
  const int ok = png_image_write_to_memory(&image, encoded.data(), &size, /*convert_to_8bit=*/0, hwc,
                                           /*row_stride=*/0, /*colormap=*/nullptr);
  if (!ok) {
    const std::string why = image.message;
    png_image_free(&image);
    runtime_error(path, ": cannot encode PNG: ", why);
  }
  encoded.resize(size);
  atomic_write(path, encoded);
}

Image read_png(const std::string& path) {
  return decode_png(read_file(path), path);
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0)
    runtime_error(path, ": not a PNG file (the first 8 bytes are not the PNG signature)");

  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    const std::string why = image.message;
    png_image_free(&image);
    runtime_error(path, ": corrupt PNG: ", why);
  }
  // Keep colour and alpha as the file has them; always 8 bits per channel, never a colormap.
  const bool colour = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  Image out;
  out.c = (colour ? 3 : 1) + (alpha ? 1 : 0);
  out.h = static_cast<int>(image.height);
  out.w = static_cast<int>(image.width);
  image.format = png_format_for_channels(out.c);
  const uint64_t total = uint64_t(image.height) * image.width * out.c;
  if (image.height == 0 || image.width == 0 || total > kMaxImageBytes) {
    png_image_free(&image);
    runtime_error(path, ": PNG of ", image.height, "x", image.width, " pixels is empty or too large");
  }
  out.pixels.resize(total);
  // finish_read frees the png_image's internals itself, on success and on failure.
  if (!png_image_finish_read(&image, /*background=*/nullptr, out.pixels.data(), /*row_stride=*/0,
                             /*colormap=*/nullptr))
    runtime_error(path, ": corrupt PNG: ", image.message);
  return out;
}

GridShape grid_shape(int n, int h, int w, int cols, int pad) {
  GANCU_CHECK(n > 0 && h > 0 && w > 0 && cols > 0 && pad >= 0, "grid of n=", n, " h=", h, " w=", w,
              " cols=", cols, " pad=", pad);
  const int used_cols = std::min(n, cols);
  const int rows = (n + cols - 1) / cols;
  return {rows * h + (rows + 1) * pad, used_cols * w + (used_cols + 1) * pad};
}

std::vector<uint8_t> make_grid(const uint8_t* images, int n, int h, int w, int c, int cols, int pad,
                               uint8_t pad_value) {
  GANCU_CHECK(c > 0, "grid with c=", c);
  const GridShape g = grid_shape(n, h, w, cols, pad);
  std::vector<uint8_t> grid(size_t(g.h) * g.w * c, pad_value);
  const size_t tile_row = size_t(w) * c;  // bytes in one row of one image
  for (int i = 0; i < n; ++i) {
    const int r = i / cols, col = i % cols;
    const size_t y0 = size_t(pad) + size_t(r) * (h + pad);
    const size_t x0 = size_t(pad) + size_t(col) * (w + pad);
    const uint8_t* src = images + size_t(i) * h * tile_row;
    for (int y = 0; y < h; ++y) std::memcpy(&grid[((y0 + y) * g.w + x0) * c], src + y * tile_row, tile_row);
  }
  return grid;
}

uint8_t float_to_u8(float x) {
  if (std::isnan(x)) return 0;
  // std::round (half away from zero), not nearbyint: the result must not depend on the FPU's
  // rounding mode, so that the CPU and CUDA backends write identical grids.
  const float v = std::round((x + 1.0f) * 127.5f);
  return static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
}

void float_to_u8(const float* x, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = float_to_u8(x[i]);
}

std::vector<uint8_t> float_to_u8(const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size());
  float_to_u8(x.data(), x.size(), out.data());
  return out;
}

}  // namespace gancu
