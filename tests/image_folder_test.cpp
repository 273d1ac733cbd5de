// Image folders (image_folder.h, resize.h, read_jpeg): decoding PNG and JPEG, channel conversion,
// antialiased resizing and centre cropping, class labels from sub-folders, unreadable files
// skipped or refused, the cache, and the round trip of `gancu sample --out DIR`.
#include <gtest/gtest.h>
#include <unistd.h>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_test_util.h"
#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"
#include "gancu/image_folder.h"
#include "gancu/image_io.h"
#include "gancu/resize.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

// A baseline JPEG of an image (quality 100: decoded values within a few levels).
void write_jpeg(const std::string& path, const Image& im) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = JDIMENSION(im.w);
  cinfo.image_height = JDIMENSION(im.h);
  cinfo.input_components = im.c;
  cinfo.in_color_space = im.c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 100, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(im.pixels.data() + size_t(cinfo.next_scanline) * im.w * im.c);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(buffer), std::streamsize(size));
  jpeg_destroy_compress(&cinfo);
  free(buffer);
}

Image solid(int h, int w, int c, std::vector<uint8_t> value) {
  Image im{h, w, c, {}};
  for (int i = 0; i < h * w; ++i) im.pixels.insert(im.pixels.end(), value.begin(), value.begin() + c);
  return im;
}

class ImageFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/gancu_folder_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cache_ = dir_ + ".cache";
    fs::remove_all(cache_);
    setenv("GANCU_CACHE_DIR", cache_.c_str(), 1);
  }
  void TearDown() override { unsetenv("GANCU_CACHE_DIR"); }
  std::string dir_, cache_;
};

TEST(Resize, ConvertsChannelsAsPilDoes) {
  const Image rgb = solid(2, 2, 3, {200, 100, 50});
  const Image gray = convert_channels(rgb, 1);
  // (19595 * 200 + 38470 * 100 + 7471 * 50 + 32768) >> 16 = 124
  EXPECT_EQ(gray.pixels, std::vector<uint8_t>(4, 124));
  EXPECT_EQ(convert_channels(solid(1, 1, 1, {77}), 3).pixels, (std::vector<uint8_t>{77, 77, 77}));
  EXPECT_EQ(convert_channels(solid(1, 1, 4, {1, 2, 3, 9}), 3).pixels, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(convert_channels(solid(1, 1, 2, {5, 9}), 1).pixels, (std::vector<uint8_t>{5}));
}

TEST(Resize, AveragesWhatItShrinksAndKeepsConstants) {
  // A constant image stays constant at any size.
  const Image grey = resize_bilinear_antialiased(solid(37, 53, 3, {90, 10, 250}), 16, 20);
  for (size_t i = 0; i < grey.pixels.size(); i += 3)
    ASSERT_EQ((std::vector<uint8_t>{grey.pixels[i], grey.pixels[i + 1], grey.pixels[i + 2]}),
              (std::vector<uint8_t>{90, 10, 250}));
  // Alternating columns 0/255 shrunk 4x: every output pixel averages both (antialiasing), where
  // plain bilinear sampling would alias to 0 or 255.
  Image stripes{8, 64, 1, {}};
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 64; ++x) stripes.pixels.push_back(x % 2 ? 255 : 0);
  const Image small = resize_bilinear_antialiased(stripes, 8, 16);
  for (int x = 1; x < 15; ++x) EXPECT_NEAR(small.pixels[size_t(x)], 127.5, 1.0) << x;
}

TEST(Resize, CropsTheCentreOfTheShorterSide) {
  // 32 x 96, white in the middle half and black at the sides -> 16 x 48 (white in [12, 36)) -> the
  // middle 16 x 16 ([16, 32)): all white; a crop off the centre would take black, blended in.
  Image wide{32, 96, 1, {}};
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 96; ++x) wide.pixels.push_back(x >= 24 && x < 72 ? 255 : 0);
  const Image out = resize_and_center_crop(wide, 16);
  ASSERT_EQ(out.h, 16);
  ASSERT_EQ(out.w, 16);
  for (uint8_t v : out.pixels) EXPECT_EQ(v, 255);
  // Tall: the same along the other axis.
  Image tall{96, 32, 1, {}};
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 32; ++x) tall.pixels.push_back(y >= 24 && y < 72 ? 255 : 0);
  for (uint8_t v : resize_and_center_crop(tall, 16).pixels) EXPECT_EQ(v, 255);
}

TEST_F(ImageFolder, ReadsPngAndJpegWithClassesFromSubfolders) {
  fs::create_directories(dir_ + "/cats");
  fs::create_directories(dir_ + "/dogs/puppies");
  write_png(dir_ + "/cats/a.png", solid(40, 40, 3, {255, 0, 0}));
  write_png(dir_ + "/cats/b.PNG", solid(20, 30, 1, {128}));                 // gray, wide: becomes RGB
  write_png(dir_ + "/dogs/c.png", solid(50, 50, 4, {0, 255, 0, 7}));        // alpha dropped
  write_jpeg(dir_ + "/dogs/puppies/d.jpg", solid(64, 48, 3, {0, 0, 255}));  // deeper: still class "dogs"
  std::ofstream(dir_ + "/notes.txt") << "not an image";                     // not taken: wrong extension, and
  std::ostringstream log;
  ImageFolderOptions o;
  o.size = 16;
  o.channels = 3;
  // ... a file at the top level would end the classes; notes.txt is not an image file.
  const Dataset d = load_image_folder(dir_, o, log);
  ASSERT_EQ(d.count, 4);
  EXPECT_EQ(d.h, 16);
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{0, 0, 1, 1}));
  const auto pixel = [&](int i) {
    const uint8_t* p = d.image(i) + (8 * 16 + 8) * 3;
    return std::vector<int>{p[0], p[1], p[2]};
  };
  EXPECT_EQ(pixel(0), (std::vector<int>{255, 0, 0}));
  EXPECT_EQ(pixel(1), (std::vector<int>{128, 128, 128}));
  EXPECT_EQ(pixel(2), (std::vector<int>{0, 255, 0}));
  const std::vector<int> blue = pixel(3);  // JPEG: within a few levels of (0, 0, 255)
  EXPECT_LE(blue[0], 4);
  EXPECT_LE(blue[1], 4);
  EXPECT_GE(blue[2], 250);
}

TEST_F(ImageFolder, SkipsUnreadableFilesOrRefusesThemWhenStrict) {
  write_png(dir_ + "/good.png", solid(8, 8, 1, {9}));
  std::ofstream(dir_ + "/empty.png").flush();                // zero bytes
  std::ofstream(dir_ + "/text.jpg") << "hello, not a JPEG";  // wrong content
  std::vector<uint8_t> png = read_file(dir_ + "/good.png");
  png.resize(png.size() / 2);
  std::ofstream(dir_ + "/truncated.png", std::ios::binary)
      .write(reinterpret_cast<const char*>(png.data()), std::streamsize(png.size()));
  ImageFolderOptions o;
  o.size = 8;
  o.channels = 1;
  std::ostringstream log;
  const Dataset d = load_image_folder(dir_, o, log);
  EXPECT_EQ(d.count, 1);
  EXPECT_NE(log.str().find("skipped 3 of 4 image files"), std::string::npos) << log.str();
  for (const char* name : {"empty.png", "text.jpg", "truncated.png"})
    EXPECT_NE(log.str().find(name), std::string::npos) << name << " in " << log.str();
  o.strict = true;
  std::ostringstream quiet;
  try {
    load_image_folder(dir_, o, quiet);
    FAIL() << "strict accepted unreadable files";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("strict"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated.png"), std::string::npos) << e.what();
  }
}

// A small file whose header claims a huge image is refused before libjpeg allocates for it (the
// JPEG fuzzer found the out-of-memory).
TEST_F(ImageFolder, AJpegHeaderClaimingAHugeImageIsRefused) {
  write_jpeg(dir_ + "/small.jpg", solid(8, 8, 3, {1, 2, 3}));
  std::vector<uint8_t> bytes = read_file(dir_ + "/small.jpg");
  bool patched = false;
  for (size_t i = 0; i + 8 < bytes.size(); ++i)
    if (bytes[i] == 0xFF && (bytes[i + 1] == 0xC0 || bytes[i + 1] == 0xC2)) {  // SOF0 / SOF2
      bytes[i + 5] = bytes[i + 7] = 0x9C, bytes[i + 6] = bytes[i + 8] = 0x40;  // 40000 x 40000
      patched = true;
      break;
    }
  ASSERT_TRUE(patched);
  std::ofstream(dir_ + "/huge.jpg", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  try {
    read_jpeg(dir_ + "/huge.jpg");
    FAIL() << "a 40000 x 40000 header was accepted";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("larger than gancu reads"), std::string::npos) << e.what();
  }
}

TEST_F(ImageFolder, EmptyOrUnreadableFoldersAreErrorsNamingTheFolder) {
  ImageFolderOptions o;
  o.size = 8;
  o.channels = 1;
  std::ostringstream log;
  EXPECT_THROW(
      {
        try {
          load_image_folder(dir_, o, log);
        } catch (const RuntimeError& e) {
          EXPECT_NE(std::string(e.what()).find(dir_), std::string::npos);
          EXPECT_NE(std::string(e.what()).find("holds no images"), std::string::npos) << e.what();
          throw;
        }
      },
      RuntimeError);
  std::ofstream(dir_ + "/bad.png") << "nope";
  EXPECT_THROW(load_image_folder(dir_, o, log), RuntimeError);
  // load_dataset knows the folder as images, and needs the model's size for it.
  EXPECT_THROW(load_dataset(dir_, Split::Train), UsageError);
}

TEST_F(ImageFolder, TheSecondLoadComesFromTheCacheUntilAFileChanges) {
  write_png(dir_ + "/a.png", solid(30, 30, 3, {10, 20, 30}));
  write_png(dir_ + "/b.png", solid(30, 30, 3, {40, 50, 60}));
  ImageFolderOptions o;
  o.size = 12;
  o.channels = 3;
  std::ostringstream first, second, third;
  const Dataset a = load_image_folder(dir_, o, first);
  EXPECT_NE(first.str().find("decoded and cached"), std::string::npos) << first.str();
  const Dataset b = load_image_folder(dir_, o, second);
  EXPECT_NE(second.str().find("from the cache"), std::string::npos) << second.str();
  EXPECT_EQ(a.images, b.images);
  // Another size is another entry; a changed file is decoded again.
  write_png(dir_ + "/b.png", solid(31, 30, 3, {41, 50, 60}));
  const Dataset c = load_image_folder(dir_, o, third);
  EXPECT_NE(third.str().find("decoded and cached"), std::string::npos) << third.str();
  EXPECT_NE(a.images, c.images);
}

TEST_F(ImageFolder, InfoListsTheClassesWithoutDecoding) {
  fs::create_directories(dir_ + "/shirts");
  fs::create_directories(dir_ + "/shoes");
  write_png(dir_ + "/shirts/1.png", solid(5, 5, 1, {1}));
  write_png(dir_ + "/shoes/1.png", solid(5, 5, 1, {1}));
  std::ofstream(dir_ + "/shoes/2.jpg") << "not decoded by info";
  const testing_cli::Result r = testing_cli::run("info --data " + dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("a folder of 3 image files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("class 0: shirts (1 files)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("class 1: shoes (2 files)"), std::string::npos) << r.output;
}

// gancu sample --out DIR writes one PNG per sample; the folder reader reads them back, at their
// own size, as the same bytes `--out FILE.idx` writes.
TEST_F(ImageFolder, SamplesWrittenAsPngsReadBackAsTheSameImages) {
  const std::string run = dir_ + "/run", pngs = dir_ + "/samples", idx = dir_ + "/samples.idx";
  const testing_cli::Result trained = testing_cli::run(
      "train --preset dcgan --data synthetic:28x28x1:256 --steps 2 --batch 16 --threads 1 --out " + run);
  ASSERT_EQ(trained.code, 0) << trained.output;
  ASSERT_EQ(testing_cli::run("sample --run " + run + " --n 12 --out " + pngs).code, 0);
  ASSERT_EQ(testing_cli::run("sample --run " + run + " --n 12 --out " + idx).code, 0);
  ImageFolderOptions o;
  o.size = 28;
  o.channels = 1;
  o.use_cache = false;
  std::ostringstream log;
  const Dataset from_pngs = load_image_folder(pngs, o, log);
  const Dataset from_idx = read_idx(idx);
  ASSERT_EQ(from_pngs.count, 12);
  EXPECT_EQ(from_pngs.images, from_idx.images);
}

}  // namespace
}  // namespace gancu
