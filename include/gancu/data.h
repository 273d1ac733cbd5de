// Data sets: reading MNIST-family IDX files and CIFAR-10 binaries into one uint8 NHWC array,
// and finding a data set by name on this machine.
//
// The trainer uploads Dataset::images to the device once and normalizes batches there
// (DESIGN.md, idea 3), so the host side only ever holds raw uint8 pixels.
//
// Every reader validates what it reads and reports a problem as a RuntimeError whose message
// starts with the file's path and says what is wrong with it (wrong magic, truncated, ...).
// A name that is neither a known data set nor an existing path is a UsageError.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gancu {

enum class Split { Train, Test, All };
const char* split_name(Split split);         // "train", "test", "all"
Split parse_split(const std::string& text);  // the inverse; anything else is a UsageError

// The labels of every supported data set are class indices below this.
constexpr int kMaxClasses = 10;

struct Dataset {
  std::string name;
  int h = 0, w = 0, c = 0;
  int64_t count = 0;
  std::vector<uint8_t> images;           // [count, h, w, c] NHWC uint8
  std::vector<uint8_t> labels;           // [count], or empty when the data set has no labels
  int num_classes = 0;                   // kMaxClasses with labels (an image folder: its classes), 0 without
  std::vector<std::string> class_names;  // an image folder's sub-folders; empty otherwise

  size_t image_bytes() const { return size_t(h) * w * c; }
  const uint8_t* image(int64_t i) const { return images.data() + size_t(i) * image_bytes(); }
};

// ---- IDX (MNIST, Fashion-MNIST, and gancu's own sample files) ----------------------------------
//
// Files are read through zlib's gzread, which reads gzip-compressed and raw files alike.
// Images: uint8 with 3 dims (n, rows, cols; magic 0x00000803, c = 1) or 4 dims
// (n, rows, cols, channels; magic 0x00000804, gancu's extension for colour, see write_idx_images).
// Labels: uint8 with 1 dim (n; magic 0x00000801), each below kMaxClasses.
//
// Bytes after the data the header promises are an error, not ignored: a header that describes
// less than the file holds means the header or the file is not what it claims to be, and
// silently training on part of it would hide that. (Bytes after the end of a gzip stream are
// ignored by zlib and cannot be seen here.)

// Reads an images file; the result has no labels.
Dataset read_idx_images(const std::string& path);
// Reads a labels file.
std::vector<uint8_t> read_idx_labels(const std::string& path);
// Reads images and, when labels_path is not empty, their labels; the counts must match.
Dataset read_idx(const std::string& images_path, const std::string& labels_path = "");

// ---- CIFAR-10 binary version --------------------------------------------------------------------
//
// Each file is a sequence of 3073-byte records: 1 label byte (< 10), then 3x32x32 pixels in CHW
// order (all red, all green, all blue), converted here to HWC. The images of all files are
// concatenated in the order given.
Dataset read_cifar10(const std::vector<std::string>& files);

// ---- Synthetic ------------------------------------------------------------------------------
//
// `count` deterministic pseudo-random images of h x w x c (uniform bytes) with labels in
// [0, kMaxClasses): the same seed always gives the same bytes. For benchmarks, whose throughput
// does not depend on pixel values.
Dataset make_synthetic_dataset(int h, int w, int c, int64_t count, uint64_t seed);

// ---- Stacked MNIST ---------------------------------------------------------------------------
//
// The 1,000-mode benchmark of the mode-collapse literature (VEEGAN, PacGAN): `count` 28x28x3
// images whose three channels are three MNIST digits drawn independently (a fixed Philox stream
// of `seed`), so that a generator's mode is the triple of digits an MNIST classifier reads in its
// channels. No labels are stored (1,000 classes do not fit a byte); `load_dataset("stacked-mnist")`
// builds 60,000 of them from the MNIST split asked for.
Dataset make_stacked_mnist(const Dataset& mnist, int64_t count, uint64_t seed);

// ---- Finding a data set ---------------------------------------------------------------------
//
// name_or_path is one of
//   "mnist"          $GANCU_DATA_DIR/mnist, then ../shared/data/mnist relative to the
//                    executable's folder (and its parents) and to the working directory (and its
//                    parents). That shared copy has the test set only: Train and All fall back
//                    to it with a note on stderr.
//   "fashion-mnist"  $GANCU_DATA_DIR/fashion-mnist, then /usr/share/datasets/fashion-mnist
//                    (Debian's dataset-fashion-mnist).
//   "cifar10"        $GANCU_DATA_DIR/cifar10, then ~/.cache/gancu/cifar10; the files may be in
//                    a cifar-10-batches-bin/ subfolder, as the official archive unpacks.
//   "stacked-mnist"  make_stacked_mnist of the "mnist" split asked for (60,000 images).
//   "synthetic:HxWxC" or "synthetic:HxWxC:N"
//                    make_synthetic_dataset with N images (default 4096); each split has its own
//                    seed, and All is Train followed by Test.
//   a folder         holding IDX files (*-images-idx3-ubyte[.gz], train-* / t10k-* or test-*,
//                    labels *-labels-idx1-ubyte[.gz] beside them) or CIFAR-10 files
//                    (data_batch_N.bin, test_batch.bin).
//   a file           an IDX images file (its labels file next to it is used when present), or
//                    one CIFAR-10 .bin file; the split is then ignored.
// Known names win over a file or folder of the same name (write "./mnist" for the folder).
// Split::All concatenates train and test where both exist. When a folder lacks the requested
// split but has the other, that one is used with a note on stderr.
// An unknown name is a UsageError; a known data set that is not found is a RuntimeError that
// lists where it looked and how to get the data.
//   a folder of PNG/JPEG images (image_folder.h), read at `folder`'s size and channels (the
//                    model's); without `folder` such a folder is a UsageError. The split is ignored.
struct ImageFolderOptions;
Dataset load_dataset(const std::string& name_or_path, Split split,
                     const ImageFolderOptions* folder = nullptr);

}  // namespace gancu
