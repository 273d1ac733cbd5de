// IDX files as gancu reads them (raw or gzip: zlib tells them apart by the first bytes), as images
// and as labels. Seeds: tests/fuzz/corpus/idx.
#include "fuzz_util.h"
#include "gancu/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gancu::fuzz::MemFile file(data, size);
  gancu::fuzz::expect_clean([&] {
    const gancu::Dataset d = gancu::read_idx_images(file.path());
    if (d.images.size() != size_t(d.count) * d.h * d.w * d.c) std::abort();
  });
  gancu::fuzz::expect_clean([&] { gancu::read_idx_labels(file.path()); });
  return 0;
}
