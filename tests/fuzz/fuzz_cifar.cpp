// CIFAR-10 binary batches (records of 1 label byte and 3x32x32 pixels). Seeds: tests/fuzz/corpus/cifar.
#include "fuzz_util.h"
#include "gancu/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gancu::fuzz::MemFile file(data, size);
  gancu::fuzz::expect_clean([&] {
    const gancu::Dataset d = gancu::read_cifar10({file.path()});
    if (d.count * 3072 != int64_t(d.images.size()) || size_t(d.count) != d.labels.size()) std::abort();
  });
  return 0;
}
