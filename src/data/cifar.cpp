// The CIFAR-10 binary reader. See include/gancu/data.h.
#include "gancu/check.h"
#include "gancu/data.h"
#include "gancu/fileutil.h"

namespace gancu {

namespace {
constexpr int kSide = 32, kChannels = 3;
constexpr size_t kPixels = size_t(kSide) * kSide * kChannels;  // 3072
constexpr size_t kRecord = 1 + kPixels;                        // label byte + CHW pixels
}  // namespace

Dataset read_cifar10(const std::vector<std::string>& files) {
  GANCU_CHECK(!files.empty(), "read_cifar10 needs at least one file");
  Dataset d;
  d.name = files.size() == 1 ? files[0] : path_dirname(files[0]);
  d.h = kSide;
  d.w = kSide;
  d.c = kChannels;
  d.num_classes = kMaxClasses;
  for (const std::string& path : files) {
    const std::vector<uint8_t> bytes = read_file(path);
    if (bytes.empty()) runtime_error(path, ": empty file, expected CIFAR-10 records of ", kRecord, " bytes");
    if (bytes.size() % kRecord != 0)
      runtime_error(path, ": size ", bytes.size(), " bytes is not a multiple of ", kRecord,
                    " (1 label byte + 3x32x32 pixels per record): truncated, or not a CIFAR-10 binary file (",
                    bytes.size() / kRecord, " whole records and ", bytes.size() % kRecord,
                    " bytes left over)");
    const size_t n = bytes.size() / kRecord;
    const size_t first = d.labels.size();
    d.labels.resize(first + n);
    d.images.resize((first + n) * kPixels);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* rec = bytes.data() + i * kRecord;
      if (rec[0] >= kMaxClasses)
        runtime_error(path, ": label ", int(rec[0]), " of record ", i, " (byte offset ", i * kRecord,
                      ") is out of range (CIFAR-10 labels are 0..", kMaxClasses - 1,
                      "); is this a CIFAR-100 file or not CIFAR at all?");
      d.labels[first + i] = rec[0];
      // The file stores each image as three 32x32 planes (CHW); the trainer wants HWC.
      const uint8_t* planes = rec + 1;
      uint8_t* out = d.images.data() + (first + i) * kPixels;
      for (int p = 0; p < kSide * kSide; ++p)
        for (int ch = 0; ch < kChannels; ++ch) out[p * kChannels + ch] = planes[ch * kSide * kSide + p];
    }
  }
  d.count = static_cast<int64_t>(d.labels.size());
  return d;
}

}  // namespace gancu
