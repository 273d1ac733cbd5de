// JPEG files where gancu reads them: the images of an image folder (`--data FOLDER`). libjpeg's
// fatal errors leave through longjmp (src/io/jpeg_io.cpp): any input must end in an image or a
// RuntimeError, never a crash, a leak or a hang. Seeds: tests/fuzz/corpus/jpeg.
#include "fuzz_util.h"
#include "gancu/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gancu::fuzz::MemFile file(data, size);
  gancu::fuzz::expect_clean([&] {
    const gancu::Image im = gancu::read_jpeg(file.path());
    if (im.pixels.size() != size_t(im.h) * im.w * im.c || (im.c != 1 && im.c != 3)) std::abort();
  });
  return 0;
}
