// IDX content inside a valid gzip stream: the fuzzer's bytes are compressed here, so that every
// input reaches the IDX parser behind zlib (fuzz_idx mostly meets zlib's own checks). The last
// input byte, when odd, also cuts the stream short, as a partly downloaded .gz is.
#include <zlib.h>

#include <vector>

#include "fuzz_util.h"
#include "gancu/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool cut = data[size - 1] & 1;
  --size;
  std::vector<uint8_t> gz(compressBound(uLong(size)) + 64);
  z_stream zs{};
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  zs.next_in = const_cast<uint8_t*>(data);
  zs.avail_in = uInt(size);
  zs.next_out = gz.data();
  zs.avail_out = uInt(gz.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  if (cut) gz.resize(gz.size() / 2);
  const gancu::fuzz::MemFile file(gz.data(), gz.size());
  gancu::fuzz::expect_clean([&] { gancu::read_idx_images(file.path()); });
  gancu::fuzz::expect_clean([&] { gancu::read_idx_labels(file.path()); });
  return 0;
}
