// PNG round trips and failures, grid layout, the float -> pixel mapping, and PNGs checked by an
// independent decoder (Python's PIL) where one is installed.
#include "gancu/image_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::find_python;
using testing_io::read_raw;
using testing_io::TempDir;
using testing_io::throws_with;
using testing_io::write_raw;

std::vector<uint8_t> pattern(size_t n, int seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 + seed);
  return v;
}

TEST(Png, RoundTripsEveryChannelCount) {
  TempDir dir;
  for (int c = 1; c <= 4; ++c) {
    const int h = 7, w = 13;
    const std::vector<uint8_t> pixels = pattern(size_t(h) * w * c, c);
    const std::string p = dir / ("img" + std::to_string(c) + ".png");
    write_png(p, pixels.data(), h, w, c);
    const Image back = read_png(p);
    EXPECT_EQ(back.h, h);
    EXPECT_EQ(back.w, w);
    EXPECT_EQ(back.c, c);
    EXPECT_EQ(back.pixels, pixels) << "channels " << c;
  }
  EXPECT_EQ(dir.entries().size(), 4u);  // no temporary files left
}

TEST(Png, WriteErrorsNameThePath) {
  TempDir dir;
  const uint8_t px[4] = {1, 2, 3, 4};
  const std::string missing = dir / "no_dir/x.png";
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { write_png(missing, px, 1, 1, 1); }, {missing, "does not exist"}));
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { write_png(dir / "c5.png", px, 1, 1, 5); }, {"c5.png", "5 channels"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_png(dir / "e.png", px, 0, 1, 1); }, {"e.png", "empty"}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Png, CorruptFiles) {
  TempDir dir;
  const std::vector<uint8_t> pixels = pattern(32 * 32 * 3, 5);
  const std::string good = dir / "good.png";
  write_png(good, pixels.data(), 32, 32, 3);
  const std::vector<uint8_t> bytes = read_raw(good);

  const std::string not_png = dir / "not.png";
  write_raw(not_png, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_png(not_png); }, {not_png, "not a PNG file"}));

  const std::string cut = dir / "cut.png";
  write_raw(cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_png(cut); }, {cut, "corrupt PNG"}));

  const std::string flipped = dir / "flipped.png";
  std::vector<uint8_t> bad = bytes;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 16; ++i) bad[i] ^= 0xFF;
  write_raw(flipped, bad);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_png(flipped); }, {flipped, "corrupt PNG"}));

  const std::string header_only = dir / "header.png";
  write_raw(header_only, std::vector<uint8_t>(bytes.begin(), bytes.begin() + 8));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_png(header_only); }, {header_only, "corrupt PNG"}));

  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_png(dir / "none.png"); }, {"none.png", "No such file"}));
}

TEST(Png, ReadableByPil) {
  const std::string python = find_python();
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  if (std::system((python + " -c 'import PIL' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "python3 has no PIL (apt-get install python3-pil)";
  TempDir dir;
  const int h = 3, w = 5;
  const std::vector<uint8_t> rgb = pattern(h * w * 3, 9);
  write_png(dir / "rgb.png", rgb.data(), h, w, 3);
  const std::string script = dir / "check.py";
  std::ofstream(script) << "import sys\nfrom PIL import Image\n"
                        << "im = Image.open(sys.argv[1])\n"
                        << "assert im.mode == 'RGB' and im.size == (" << w << ", " << h
                        << "), (im.mode, im.size)\n"
                        << "print(' '.join(str(v) for px in im.getdata() for v in px))\n";
  std::FILE* p = ::popen((python + " " + script + " " + (dir / "rgb.png")).c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ASSERT_EQ(::pclose(p), 0) << out;
  std::string expected;
  for (size_t i = 0; i < rgb.size(); ++i) expected += (i ? " " : "") + std::to_string(rgb[i]);
  EXPECT_EQ(out, expected + "\n");
}

TEST(Grid, LayoutPaddingAndEmptyCells) {
  // 5 images of 2x3, 2 columns, pad 1: 3 rows; H = 3*2 + 4*1 = 10, W = 2*3 + 3*1 = 9.
  const int n = 5, h = 2, w = 3, c = 1, cols = 2, pad = 1;
  std::vector<uint8_t> images(size_t(n) * h * w * c);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        images[(i * h + y) * w + x] = static_cast<uint8_t>(10 * (i + 1) + y * w + x);
  const GridShape g = grid_shape(n, h, w, cols, pad);
  EXPECT_EQ(g.h, 10);
  EXPECT_EQ(g.w, 9);
  const std::vector<uint8_t> grid = make_grid(images.data(), n, h, w, c, cols, pad, 255);
  ASSERT_EQ(grid.size(), 90u);
  const char* expected[10] = {
      "P P P P P P P P P",  //
      "P 10 11 12 P 20 21 22 P", "P 13 14 15 P 23 24 25 P", "P P P P P P P P P",
      "P 30 31 32 P 40 41 42 P", "P 33 34 35 P 43 44 45 P", "P P P P P P P P P",
      "P 50 51 52 P P P P P",    "P 53 54 55 P P P P P",    "P P P P P P P P P",
  };
  for (int y = 0; y < 10; ++y) {
    std::string row;
    for (int x = 0; x < 9; ++x) {
      const int v = grid[y * 9 + x];
      row += (x ? " " : "") + (v == 255 ? std::string("P") : std::to_string(v));
    }
    EXPECT_EQ(row, expected[y]) << "row " << y;
  }
}

TEST(Grid, ColourAndFewerImagesThanColumns) {
  const int n = 2, h = 1, w = 1, c = 3;
  const std::vector<uint8_t> images = {1, 2, 3, 4, 5, 6};
  const GridShape g = grid_shape(n, h, w, 8, 0);  // only as wide as the images need
  EXPECT_EQ(g.h, 1);
  EXPECT_EQ(g.w, 2);
  EXPECT_EQ(make_grid(images.data(), n, h, w, c, 8, 0), images);
  const std::vector<uint8_t> padded = make_grid(images.data(), n, h, w, c, 8, 1, 9);
  EXPECT_EQ(padded.size(), size_t(3 * 5 * 3));
  EXPECT_EQ(padded[(1 * 5 + 1) * 3 + 0], 1);
  EXPECT_EQ(padded[(1 * 5 + 3) * 3 + 2], 6);
  EXPECT_EQ(padded[0], 9);
}

TEST(FloatToU8, RoundsAndClamps) {
  EXPECT_EQ(float_to_u8(-1.0f), 0);
  EXPECT_EQ(float_to_u8(1.0f), 255);
  EXPECT_EQ(float_to_u8(0.0f), 128);  // 127.5 rounds half away from zero
  EXPECT_EQ(float_to_u8(0.5f), 191);  // 191.25
  EXPECT_EQ(float_to_u8(-0.99f), 1);  // 1.275
  EXPECT_EQ(float_to_u8(3.0f), 255);
  EXPECT_EQ(float_to_u8(-7.0f), 0);
  EXPECT_EQ(float_to_u8(std::numeric_limits<float>::infinity()), 255);
  EXPECT_EQ(float_to_u8(-std::numeric_limits<float>::infinity()), 0);
  EXPECT_EQ(float_to_u8(std::nanf("")), 0);
  EXPECT_EQ(float_to_u8(std::vector<float>{-1.0f, 1.0f}), (std::vector<uint8_t>{0, 255}));
}

TEST(IdxWrite, ErrorsNameThePath) {
  TempDir dir;
  const uint8_t px[4] = {};
  const std::string missing = dir / "none/x-images-idx3-ubyte.gz";
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_idx_images(missing, px, 1, 2, 2, 1); }, {missing}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_idx_images(dir / "z", px, 0, 2, 2, 1); },
                                        {"cannot write 0 images"}));
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { write_idx_labels(dir / "l", px, 0); }, {"cannot write 0 labels"}));
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace gancu
