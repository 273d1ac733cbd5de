// PNG files where gancu reads them: the sample grids that the video and TensorBoard's image
// events read back. Seeds: tests/fuzz/corpus/png.
#include "fuzz_util.h"
#include "gancu/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gancu::fuzz::MemFile file(data, size);
  gancu::fuzz::expect_clean([&] {
    const gancu::Image im = gancu::read_png(file.path());
    if (im.pixels.size() != size_t(im.h) * im.w * im.c) std::abort();
  });
  return 0;
}
