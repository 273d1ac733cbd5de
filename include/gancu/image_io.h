// Images in and out: PNG files (sample grids, image folders), sample grids, and IDX files (the
// MNIST format) for generated samples that evaluation tools read.
//
// Pixels are always uint8, rows top to bottom, HWC (channels interleaved), the layout of
// Dataset::images and of the NHWC tensors. Every writer is atomic (see fileutil.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gancu {

struct Image {
  int h = 0, w = 0, c = 0;
  std::vector<uint8_t> pixels;  // [h, w, c]
};

// Writes an 8-bit PNG: c = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). The file is encoded
// in memory, then written atomically; a failure is a RuntimeError naming `path`.
void write_png(const std::string& path, const uint8_t* hwc, int h, int w, int c);
inline void write_png(const std::string& path, const Image& image) {
  write_png(path, image.pixels.data(), image.h, image.w, image.c);
}

// Reads a PNG of any bit depth and colour type into 8 bits per channel: c = 1 for gray, 3 for
// colour (palette images become RGB), plus one channel when the file has alpha (c = 2 or 4).
// 16-bit files are reduced to 8 bits. A missing, truncated or corrupt file is a RuntimeError
// naming `path` and libpng's reason.
Image read_png(const std::string& path);

// Reads a JPEG (libjpeg-turbo) into 8 bits per channel: c = 1 for grayscale files, 3 otherwise
// (YCbCr, CMYK and the rest converted to RGB). A missing, truncated or corrupt file is a
// RuntimeError naming `path` and libjpeg's reason.
Image read_jpeg(const std::string& path);
bool is_jpeg(const uint8_t* bytes, size_t n);  // starts with the SOI marker
// The same decoders on a file's bytes already in memory (`path` names it in messages).
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path);
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path);
// A PNG or a JPEG, told apart by the first bytes (not the name), read once. An empty file is a
// RuntimeError naming it.
Image read_image(const std::string& path);

// The size of make_grid's result.
struct GridShape {
  int h = 0, w = 0;
};
GridShape grid_shape(int n, int h, int w, int cols, int pad = 2);

// Tiles n images [n, h, w, c] into one image [H, W, c] of ceil(n / cols) rows and min(n, cols)
// columns, with `pad` pixels of `pad_value` between the tiles and around the border (as
// torchvision's make_grid does). Unused cells of the last row are filled with pad_value. Black by
// default, as torchvision and the PyTorch peer (tools/gancu_torch.py) draw it, so that the two
// grids compare pixel for pixel.
std::vector<uint8_t> make_grid(const uint8_t* images, int n, int h, int w, int c, int cols, int pad = 2,
                               uint8_t pad_value = 0);

// Maps a generator's tanh output in [-1, 1] to pixels: round((x + 1) * 127.5), clamped to
// [0, 255]; NaN becomes 0 so that a diverged model shows black instead of undefined bytes.
uint8_t float_to_u8(float x);
void float_to_u8(const float* x, size_t n, uint8_t* out);
std::vector<uint8_t> float_to_u8(const std::vector<float>& x);

// Writes images [n, h, w, c] as an IDX file readable by MNIST tools and by read_idx:
//   c == 1: magic 0x00000803, dims (n, h, w)   -- exactly the MNIST images format;
//   c >  1: magic 0x00000804, dims (n, h, w, c) -- the same convention extended by one dim.
// A path ending in ".gz" is gzip-compressed. Atomic; errors are RuntimeErrors naming the path.
void write_idx_images(const std::string& path, const uint8_t* images, int64_t n, int h, int w, int c);

// Writes labels [n] as an IDX label file: magic 0x00000801, dims (n). ".gz" as above.
void write_idx_labels(const std::string& path, const uint8_t* labels, int64_t n);

// A size x size grayscale picture of 2-d points [n, 2] (white dots on black), for generators of
// 2-d data: the axes span [-extent, extent] in x and y (y up); `centres` [m, 2] (may be null) are
// drawn as grey crosses underneath, so that covered and missed modes show at a glance.
std::vector<uint8_t> render_scatter(const float* points, int64_t n, const float* centres, int m, float extent,
                                    int size = 256);

}  // namespace gancu
