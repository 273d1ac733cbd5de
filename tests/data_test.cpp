// Data set readers: IDX and CIFAR-10 files written here (good and broken in every way the
// readers check), the real MNIST test set from ../shared/data, Fashion-MNIST when installed,
// and the lookup of data sets by name and path.
#include "gancu/data.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <numeric>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::put_be32;
using testing_io::read_raw;
using testing_io::ScopedEnv;
using testing_io::TempDir;
using testing_io::throws_with;
using testing_io::write_raw;

// A raw IDX images file: header for n x rows x cols and `data_bytes` bytes of pixels.
std::vector<uint8_t> idx_images_bytes(uint32_t n, uint32_t rows, uint32_t cols, size_t data_bytes) {
  std::vector<uint8_t> b;
  put_be32(b, 0x00000803);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<uint8_t>(i * 7));
  return b;
}

std::vector<uint8_t> idx_labels_bytes(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> b;
  put_be32(b, 0x00000801);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 7);
  return v;
}

// ---- IDX: good files ---------------------------------------------------------------------------

TEST(Idx, RoundTripsRawAndGzipWithLabels) {
  TempDir dir;
  const int n = 7, h = 5, w = 4;
  const std::vector<uint8_t> images = pattern(size_t(n) * h * w, 1);
  const std::vector<uint8_t> labels = {0, 1, 2, 9, 3, 3, 8};
  for (const std::string suffix : {"", ".gz"}) {
    const std::string ip = dir / ("x-images-idx3-ubyte" + suffix),
                      lp = dir / ("x-labels-idx1-ubyte" + suffix);
    write_idx_images(ip, images.data(), n, h, w, 1);
    write_idx_labels(lp, labels.data(), n);
    const Dataset d = read_idx(ip, lp);
    EXPECT_EQ(d.count, n);
    EXPECT_EQ(d.h, h);
    EXPECT_EQ(d.w, w);
    EXPECT_EQ(d.c, 1);
    EXPECT_EQ(d.images, images);
    EXPECT_EQ(d.labels, labels);
    EXPECT_EQ(d.num_classes, 10);
  }
  // gzip really compresses (the .gz starts with the gzip magic), raw is exactly header + data.
  const auto gz = read_raw(dir / "x-images-idx3-ubyte.gz");
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(gz[0], 0x1f);
  EXPECT_EQ(gz[1], 0x8b);
  EXPECT_EQ(read_raw(dir / "x-images-idx3-ubyte").size(), 16u + images.size());
}

TEST(Idx, ColourImagesUseFourDims) {
  TempDir dir;
  const int n = 3, h = 2, w = 5, c = 3;
  const std::vector<uint8_t> images = pattern(size_t(n) * h * w * c, 2);
  write_idx_images(dir / "rgb-images-idx4-ubyte", images.data(), n, h, w, c);
  const auto raw = read_raw(dir / "rgb-images-idx4-ubyte");
  ASSERT_EQ(raw.size(), 4u + 4 * 4 + images.size());
  EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.begin() + 4), (std::vector<uint8_t>{0, 0, 8, 4}));
  const Dataset d = read_idx_images(dir / "rgb-images-idx4-ubyte");
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.h, 2);
  EXPECT_EQ(d.w, 5);
  EXPECT_EQ(d.images, images);
  EXPECT_TRUE(d.labels.empty());
  EXPECT_EQ(d.num_classes, 0);
}

// ---- IDX: every kind of bad file ---------------------------------------------------------------

TEST(Idx, MissingFileNamesThePath) {
  TempDir dir;
  const std::string p = dir / "nope-images-idx3-ubyte.gz";
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "cannot open", "No such file"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_labels(p); }, {p, "No such file"}));
}

TEST(Idx, DirectoryIsNotAFile) {
  TempDir dir;
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(dir.path()); }, {dir.path()}));
}

TEST(Idx, WrongMagic) {
  TempDir dir;
  const std::string p = dir / "bad-images-idx3-ubyte";
  std::vector<uint8_t> b = idx_images_bytes(1, 2, 2, 4);
  b[0] = 0x12;
  b[1] = 0x34;
  write_raw(p, b);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); },
                                        {p, "not an IDX file", "wrong magic", "0x12340803"}));
}

TEST(Idx, PngIsNotIdx) {
  TempDir dir;
  const std::string p = dir / "picture-images-idx3-ubyte";
  const uint8_t pixel = 7;
  write_png(p, &pixel, 1, 1, 1);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "wrong magic"}));
}

TEST(Idx, LabelsFileGivenAsImagesAndViceVersa) {
  TempDir dir;
  const std::string labels = dir / "l-labels-idx1-ubyte", images = dir / "i-images-idx3-ubyte";
  write_raw(labels, idx_labels_bytes({1, 2, 3}));
  write_raw(images, idx_images_bytes(1, 2, 2, 4));
  EXPECT_TRUE(throws_with<RuntimeError>(
      [&] { read_idx_images(labels); },
      {labels, "wrong magic number 0x00000801 for images", "1 dimension", "labels file"}));
  EXPECT_TRUE(throws_with<RuntimeError>(
      [&] { read_idx_labels(images); },
      {images, "wrong magic number 0x00000803 for labels", "3 dimensions", "images file"}));
}

TEST(Idx, WrongNumberOfDims) {
  TempDir dir;
  const std::string p = dir / "two-images-idx2-ubyte";
  std::vector<uint8_t> b;
  put_be32(b, 0x00000802);
  put_be32(b, 2);
  put_be32(b, 3);
  b.resize(b.size() + 6);
  write_raw(p, b);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "wrong magic", "2 dimensions"}));
}

TEST(Idx, NonByteElementType) {
  TempDir dir;
  const std::string p = dir / "f-images-idx3-float";
  std::vector<uint8_t> b = idx_images_bytes(1, 1, 1, 4);
  b[2] = 0x0D;
  write_raw(p, b);
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "unsupported IDX element type", "float32"}));
}

TEST(Idx, ZeroAndAbsurdDims) {
  TempDir dir;
  const std::string zero = dir / "zero-images-idx3-ubyte", big = dir / "big-images-idx3-ubyte",
                    many = dir / "many-images-idx3-ubyte";
  write_raw(zero, idx_images_bytes(0, 28, 28, 0));
  write_raw(big, idx_images_bytes(1, 100000, 28, 0));
  write_raw(many, idx_images_bytes(0xFFFFFFFFu, 16384, 16384, 0));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(zero); }, {zero, "zero dimension"}));
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { read_idx_images(big); }, {big, "absurd dimensions", "100000x28"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(many); }, {many, "absurd dimensions"}));
  const std::string zl = dir / "zero-labels-idx1-ubyte";
  write_raw(zl, idx_labels_bytes({}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_labels(zl); }, {zl, "0 labels"}));
}

TEST(Idx, TooShortForMagicOrHeader) {
  TempDir dir;
  const std::string tiny = dir / "tiny-images-idx3-ubyte", cut = dir / "cut-images-idx3-ubyte";
  write_raw(tiny, {0, 0});
  std::vector<uint8_t> b = idx_images_bytes(10, 28, 28, 0);
  b.resize(9);
  write_raw(cut, b);
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { read_idx_images(tiny); }, {tiny, "not an IDX file", "only 2 bytes"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(cut); },
                                        {cut, "truncated header", "need 16 bytes but the file holds 9"}));
}

TEST(Idx, TruncatedDataSaysWhatWasPromised) {
  TempDir dir;
  const std::string p = dir / "t10k-images-idx3-ubyte";
  write_raw(p, idx_images_bytes(10, 28, 28, 1234));
  EXPECT_TRUE(throws_with<RuntimeError>(
      [&] { read_idx_images(p); },
      {p, "truncated: header promises 10 images of 28x28 (7840 bytes) but the file holds 1234"}));
  const std::string lp = dir / "t10k-labels-idx1-ubyte";
  std::vector<uint8_t> lb = idx_labels_bytes({1, 2, 3, 4, 5});
  lb.resize(lb.size() - 2);
  write_raw(lp, lb);
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { read_idx_labels(lp); },
                                {lp, "truncated: header promises 5 labels (5 bytes) but the file holds 3"}));
}

TEST(Idx, TrailingBytesAreAnError) {
  TempDir dir;
  const std::string p = dir / "long-images-idx3-ubyte";
  write_raw(p, idx_images_bytes(2, 3, 3, 18 + 5));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); },
                                        {p, "5 unexpected bytes after the 2 images of 3x3"}));
}

TEST(Idx, LabelCountMismatchNamesBothFiles) {
  TempDir dir;
  const std::string ip = dir / "a-images-idx3-ubyte", lp = dir / "a-labels-idx1-ubyte";
  write_raw(ip, idx_images_bytes(3, 2, 2, 12));
  write_raw(lp, idx_labels_bytes({1, 2}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx(ip, lp); },
                                        {lp, ip, "label count mismatch", "2 labels", "3 images"}));
}

TEST(Idx, LabelOutOfRange) {
  TempDir dir;
  const std::string lp = dir / "a-labels-idx1-ubyte";
  write_raw(lp, idx_labels_bytes({1, 2, 12, 3}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_labels(lp); },
                                        {lp, "label 12 at index 2 is out of range", "0..9"}));
}

TEST(Idx, CorruptGzip) {
  TempDir dir;
  const std::string p = dir / "c-images-idx3-ubyte.gz";
  // Compressible data, so that a flipped byte lands in Huffman-coded deflate data.
  std::vector<uint8_t> images(64 * 28 * 28);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>((i / 28) % 3 == 0 ? 0 : 200);
  write_idx_images(p, images.data(), 64, 28, 28, 1);
  std::vector<uint8_t> gz = read_raw(p);
  ASSERT_GT(gz.size(), 60u);
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 8; ++i) gz[i] ^= 0x5A;
  write_raw(p, gz);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "corrupt gzip data"}));
}

TEST(Idx, CorruptGzipCaughtByCrc) {
  TempDir dir;
  const std::string p = dir / "crc-images-idx3-ubyte.gz";
  // Incompressible bytes are stored verbatim: a flipped byte changes data only, which the gzip
  // trailer's CRC-32 catches.
  std::vector<uint8_t> images(4 * 28 * 28);
  uint32_t x = 12345;
  for (auto& v : images) v = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  write_idx_images(p, images.data(), 4, 28, 28, 1);
  std::vector<uint8_t> gz = read_raw(p);
  gz[gz.size() / 2] ^= 0xFF;
  write_raw(p, gz);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(p); }, {p, "corrupt gzip data"}));
}

TEST(Idx, TruncatedGzip) {
  TempDir dir;
  const std::string p = dir / "t-images-idx3-ubyte.gz", q = dir / "u-images-idx3-ubyte.gz";
  const std::vector<uint8_t> images = pattern(100 * 28 * 28, 3);
  write_idx_images(p, images.data(), 100, 28, 28, 1);
  std::vector<uint8_t> gz = read_raw(p);
  write_raw(q, std::vector<uint8_t>(gz.begin(), gz.end() - 4));  // data complete, trailer cut
  gz.resize(gz.size() / 2);
  write_raw(p, gz);
  EXPECT_TRUE(throws_with<RuntimeError>(
      [&] { read_idx_images(p); },
      {p, "truncated: header promises 100 images of 28x28 (78400 bytes)", "gzip stream ends early"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_idx_images(q); }, {q, "truncated gzip stream"}));
}

// ---- CIFAR-10 ----------------------------------------------------------------------------------

// A record whose pixel (y, x) of channel ch is (ch * 80 + y + x) mod 256, stored CHW.
std::vector<uint8_t> cifar_record(uint8_t label, int seed) {
  std::vector<uint8_t> r(3073);
  r[0] = label;
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        r[1 + ch * 1024 + y * 32 + x] = static_cast<uint8_t>(ch * 80 + y + x + seed);
  return r;
}

std::vector<uint8_t> cifar_file(const std::vector<uint8_t>& labels, int seed) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto r = cifar_record(labels[i], seed + int(i));
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

TEST(Cifar, ConvertsChwToHwc) {
  TempDir dir;
  write_raw(dir / "data_batch_1.bin", cifar_file({3, 7}, 0));
  write_raw(dir / "data_batch_2.bin", cifar_file({9}, 50));
  const Dataset d = read_cifar10({dir / "data_batch_1.bin", dir / "data_batch_2.bin"});
  ASSERT_EQ(d.count, 3);
  EXPECT_EQ(d.h, 32);
  EXPECT_EQ(d.w, 32);
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{3, 7, 9}));
  EXPECT_EQ(d.num_classes, 10);
  const int seeds[3] = {0, 1, 50};
  for (int i = 0; i < 3; ++i)
    for (int y : {0, 5, 31})
      for (int x : {0, 17, 31})
        for (int ch = 0; ch < 3; ++ch)
          ASSERT_EQ(d.image(i)[(y * 32 + x) * 3 + ch], static_cast<uint8_t>(ch * 80 + y + x + seeds[i]))
              << "image " << i << " y " << y << " x " << x << " ch " << ch;
}

TEST(Cifar, SizeNotAMultipleOfTheRecord) {
  TempDir dir;
  const std::string p = dir / "data_batch_1.bin";
  std::vector<uint8_t> b = cifar_file({1, 2}, 0);
  b.resize(b.size() - 100);
  write_raw(p, b);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_cifar10({p}); },
                                        {p, "size 6046 bytes is not a multiple of 3073", "1 whole records"}));
  write_raw(p, {});
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_cifar10({p}); }, {p, "empty file"}));
}

TEST(Cifar, LabelOutOfRangeAndMissingFile) {
  TempDir dir;
  const std::string p = dir / "test_batch.bin";
  write_raw(p, cifar_file({1, 10}, 0));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_cifar10({p}); },
                                        {p, "label 10 of record 1", "out of range", "CIFAR-100"}));
  const std::string missing = dir / "data_batch_9.bin";
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_cifar10({missing}); }, {missing, "No such file"}));
}

// ---- Lookup by name and path -------------------------------------------------------------------

// Writes a tiny MNIST-style folder: train (6 images) and/or test (4 images) of 3x3, with labels.
void write_mnist_like(const TempDir& dir, const std::string& sub, bool train, bool test) {
  make_dirs(dir / sub);
  if (train) {
    const auto img = pattern(6 * 9, 11);
    const std::vector<uint8_t> lab = {0, 1, 2, 3, 4, 5};
    write_idx_images(dir / (sub + "/train-images-idx3-ubyte.gz"), img.data(), 6, 3, 3, 1);
    write_idx_labels(dir / (sub + "/train-labels-idx1-ubyte.gz"), lab.data(), 6);
  }
  if (test) {
    const auto img = pattern(4 * 9, 22);
    const std::vector<uint8_t> lab = {9, 8, 7, 6};
    write_idx_images(dir / (sub + "/t10k-images-idx3-ubyte"), img.data(), 4, 3, 3, 1);
    write_idx_labels(dir / (sub + "/t10k-labels-idx1-ubyte"), lab.data(), 4);
  }
}

TEST(LoadDataset, IdxFolderSplits) {
  TempDir dir;
  write_mnist_like(dir, "m", true, true);
  const std::string folder = dir / "m";
  const Dataset train = load_dataset(folder, Split::Train);
  const Dataset test = load_dataset(folder, Split::Test);
  const Dataset all = load_dataset(folder, Split::All);
  EXPECT_EQ(train.count, 6);
  EXPECT_EQ(test.count, 4);
  EXPECT_EQ(all.count, 10);
  EXPECT_EQ(all.labels, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 9, 8, 7, 6}));
  EXPECT_EQ(std::vector<uint8_t>(all.images.begin() + 6 * 9, all.images.end()), test.images);
  EXPECT_EQ(train.name, folder);
}

TEST(LoadDataset, MissingSplitFallsBackWithANote) {
  TempDir dir;
  write_mnist_like(dir, "m", false, true);
  ::testing::internal::CaptureStderr();
  const Dataset d = load_dataset(dir / "m", Split::Train);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(d.count, 4);
  EXPECT_NE(err.find("no train split"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(LoadDataset, SingleIdxFileFindsItsLabels) {
  TempDir dir;
  write_mnist_like(dir, "m", true, true);
  const Dataset d = load_dataset(dir / "m/t10k-images-idx3-ubyte", Split::Train);
  EXPECT_EQ(d.count, 4);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{9, 8, 7, 6}));
  // Without a labels file next to it, the images still load, unlabelled.
  std::remove((dir / "m/train-labels-idx1-ubyte.gz").c_str());
  const Dataset u = load_dataset(dir / "m/train-images-idx3-ubyte.gz", Split::Test);
  EXPECT_EQ(u.count, 6);
  EXPECT_TRUE(u.labels.empty());
}

TEST(LoadDataset, AmbiguousAndEmptyFolders) {
  TempDir dir;
  write_mnist_like(dir, "m", true, false);
  const auto img = pattern(9, 1);
  write_idx_images(dir / "m/train-other-images-idx3-ubyte", img.data(), 1, 3, 3, 1);
  EXPECT_TRUE(throws_with<RuntimeError>([&] { load_dataset(dir / "m", Split::Train); },
                                        {dir / "m", "several IDX image files for the train split"}));
  make_dirs(dir / "empty");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { load_dataset(dir / "empty", Split::Train); },
                                        {dir / "empty", "holds no data set files"}));
}

TEST(LoadDataset, Cifar10ByNameInSubfolder) {
  TempDir dir;
  make_dirs(dir / "cifar10/cifar-10-batches-bin");
  for (int b = 1; b <= 5; ++b)
    write_raw(dir / ("cifar10/cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin"),
              cifar_file({uint8_t(b), uint8_t(b)}, b));
  write_raw(dir / "cifar10/cifar-10-batches-bin/test_batch.bin", cifar_file({0}, 0));
  ScopedEnv env("GANCU_DATA_DIR", dir.path().c_str());
  const Dataset train = load_dataset("cifar10", Split::Train);
  EXPECT_EQ(train.name, "cifar10");
  EXPECT_EQ(train.count, 10);
  EXPECT_EQ(train.labels, (std::vector<uint8_t>{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}));
  EXPECT_EQ(load_dataset("cifar10", Split::Test).count, 1);
  EXPECT_EQ(load_dataset("cifar10", Split::All).count, 11);
  EXPECT_EQ(load_dataset(dir / "cifar10/cifar-10-batches-bin/test_batch.bin", Split::Train).count, 1);
}

TEST(LoadDataset, MissingKnownDataSetSaysWhereAndHow) {
  TempDir dir;
  ScopedEnv env("GANCU_DATA_DIR", dir.path().c_str());
  ScopedEnv home("HOME", dir.path().c_str());
  EXPECT_TRUE(throws_with<RuntimeError>(
      [&] { load_dataset("cifar10", Split::Train); },
      {"'cifar10' not found", dir / "cifar10", ".cache/gancu/cifar10", "cs.toronto.edu"}));
  make_dirs(dir / "fashion-mnist");  // exists but empty: said so
  if (!dir_exists("/usr/share/datasets/fashion-mnist")) {
    EXPECT_TRUE(throws_with<RuntimeError>([&] { load_dataset("fashion-mnist", Split::Train); },
                                          {"exists but holds no", "apt-get install dataset-fashion-mnist"}));
  }
}

TEST(LoadDataset, UnknownNameIsAUsageError) {
  EXPECT_TRUE(
      throws_with<UsageError>([&] { load_dataset("imagenet-but-typo", Split::Train); },
                              {"imagenet-but-typo", "not a known name", "fashion-mnist", "synthetic:HxWxC"}));
  EXPECT_TRUE(
      throws_with<UsageError>([&] { parse_split("validation"); }, {"validation", "train, test or all"}));
  EXPECT_EQ(parse_split("test"), Split::Test);
  EXPECT_STREQ(split_name(Split::All), "all");
}

TEST(LoadDataset, Synthetic) {
  const Dataset a = load_dataset("synthetic:8x6x3", Split::Train);
  const Dataset b = load_dataset("synthetic:8x6x3", Split::Train);
  const Dataset t = load_dataset("synthetic:8x6x3", Split::Test);
  EXPECT_EQ(a.count, 4096);
  EXPECT_EQ(a.h, 8);
  EXPECT_EQ(a.w, 6);
  EXPECT_EQ(a.c, 3);
  EXPECT_EQ(a.images.size(), 4096u * 8 * 6 * 3);
  EXPECT_EQ(a.images, b.images);  // deterministic
  EXPECT_NE(a.images, t.images);  // splits differ
  EXPECT_EQ(a.labels.size(), 4096u);
  EXPECT_LT(*std::max_element(a.labels.begin(), a.labels.end()), 10);
  // Not constant: every byte value shows up.
  std::array<int, 256> seen{};
  for (uint8_t v : a.images) seen[v] = 1;
  EXPECT_EQ(std::accumulate(seen.begin(), seen.end(), 0), 256);
  EXPECT_EQ(load_dataset("synthetic:4x4x1:100", Split::All).count, 200);
  for (const char* bad : {"synthetic:8x8", "synthetic:8x8x3x2", "synthetic:axbxc", "synthetic:8x8x0",
                          "synthetic:8x8x3:", "synthetic:99999x8x3"})
    EXPECT_TRUE(throws_with<UsageError>([&] { load_dataset(bad, Split::Train); }, {"synthetic"})) << bad;
}

// ---- Real data -----------------------------------------------------------------------------------

const std::string kSharedMnist = GANCU_SOURCE_DIR "/../shared/data/mnist";

TEST(RealData, MnistTestSet) {
  const std::string images = kSharedMnist + "/t10k-images-idx3-ubyte.gz";
  if (!file_exists(images)) GTEST_SKIP() << images << " is absent (the project's shared data folder)";
  const Dataset d = read_idx(images, kSharedMnist + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(d.count, 10000);
  EXPECT_EQ(d.h, 28);
  EXPECT_EQ(d.w, 28);
  EXPECT_EQ(d.c, 1);
  std::array<int, 10> per_label{};
  for (uint8_t l : d.labels) ++per_label[l];
  EXPECT_EQ(per_label, (std::array<int, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));

  // Writing the images back raw reproduces the original file byte for byte: its md5 is the
  // one the data README gives for the raw t10k-images-idx3-ubyte.
  TempDir dir;
  const std::string raw = dir / "t10k-images-idx3-ubyte";
  write_idx_images(raw, d.images.data(), d.count, 28, 28, 1);
  std::FILE* p = ::popen(("md5sum " + raw + " 2>/dev/null").c_str(), "r");
  char line[256] = {0};
  const bool got = p && std::fgets(line, sizeof line, p) != nullptr;
  if (p) ::pclose(p);
  if (!got) GTEST_SKIP() << "md5sum is not available";
  EXPECT_EQ(std::string(line).substr(0, 32), "2646ac647ad5339dbf082846283269ea");
}

TEST(RealData, MnistByNameFallsBackToTheTestSet) {
  if (!file_exists(kSharedMnist + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << kSharedMnist << " is absent";
  ScopedEnv env("GANCU_DATA_DIR", nullptr);
  const Dataset test = load_dataset("mnist", Split::Test);
  EXPECT_EQ(test.count, 10000);
  EXPECT_EQ(test.name, "mnist");
  ::testing::internal::CaptureStderr();
  const Dataset train = load_dataset("mnist", Split::Train);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(train.count, 10000);
  EXPECT_NE(err.find("no train split"), std::string::npos) << err;
}

TEST(RealData, FashionMnist) {
  const std::string folder = "/usr/share/datasets/fashion-mnist";
  if (!dir_exists(folder)) GTEST_SKIP() << folder << " is absent (apt-get install dataset-fashion-mnist)";
  ScopedEnv env("GANCU_DATA_DIR", nullptr);
  const Dataset all = load_dataset("fashion-mnist", Split::All);
  ASSERT_EQ(all.count, 70000);
  EXPECT_EQ(all.h, 28);
  EXPECT_EQ(all.w, 28);
  EXPECT_EQ(all.c, 1);
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
  std::array<int, 10> per_label{};
  for (uint8_t l : all.labels) ++per_label[l];
  for (int k = 0; k < 10; ++k) EXPECT_EQ(per_label[k], 7000) << "class " << k;
  EXPECT_EQ(load_dataset("fashion-mnist", Split::Test).count, 10000);
}

}  // namespace
}  // namespace gancu
