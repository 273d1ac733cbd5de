// Reading JPEG files with libjpeg-turbo (its libjpeg API).
//
// libjpeg reports a fatal error by calling error_exit, which must not return: the documented way
// out is longjmp back to a setjmp in the caller. Everything that owns memory (the file's bytes,
// the output pixels) is created before the setjmp and outlives it; between setjmp and the end of
// decoding only C objects live, so that no C++ destructor is skipped by the jump.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>

// jpeglib.h uses size_t and FILE without including their headers.
#include <jpeglib.h>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"

namespace gancu {

namespace {

// Limits, so that a small file whose header claims a huge image cannot take the machine's memory
// (libjpeg allocates from the header's size; a progressive file buffers every coefficient):
// 64 megapixels (8K x 8K), and what libjpeg may allocate for one image.
constexpr uint64_t kMaxJpegPixels = uint64_t(1) << 26;
constexpr long kMaxJpegMemory = 1L << 29;  // 512 MiB

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  JpegError* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void ignore_message(j_common_ptr) {}  // warnings (a recoverable corrupt marker) are not printed

}  // namespace

bool is_jpeg(const uint8_t* bytes, size_t n) {
  return n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

Image read_jpeg(const std::string& path) {
  return decode_jpeg(read_file(path), path);
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  if (bytes.empty()) runtime_error(path, ": empty file");
  return is_jpeg(bytes.data(), bytes.size()) ? decode_jpeg(bytes, path) : decode_png(bytes, path);
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (!is_jpeg(bytes.data(), bytes.size()))
    runtime_error(path, ": not a JPEG file (it does not start with the JPEG SOI marker)");
  Image out;
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  err.mgr.output_message = ignore_message;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    runtime_error(path, ": corrupt JPEG: ", err.message);
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = kMaxJpegMemory;
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (uint64_t(cinfo.image_width) * cinfo.image_height > kMaxJpegPixels) {
    const unsigned width = cinfo.image_width, height = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    runtime_error(path, ": JPEG of ", height, "x", width, " pixels is larger than gancu reads (",
                  kMaxJpegPixels, " pixels)");
  }
  // Gray stays gray; every other colour space (YCbCr, CMYK...) is converted to RGB by libjpeg.
  cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  // No scaling is asked for, so the output has the header's size, checked above (libjpeg itself
  // refuses a zero size), and the colour spaces asked for give 1 or 3 components.
  jpeg_start_decompress(&cinfo);
  out.h = int(cinfo.output_height);
  out.w = int(cinfo.output_width);
  out.c = cinfo.output_components;
  const size_t stride = size_t(out.w) * size_t(out.c);
  out.pixels.resize(size_t(out.h) * stride);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.pixels.data() + size_t(cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

}  // namespace gancu
