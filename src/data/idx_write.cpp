// IDX writers for generated samples: the MNIST format, so that any tool (and read_idx) reads
// them. See include/gancu/image_io.h for the 4-dim colour convention.
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"

namespace gancu {

namespace {

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  const uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.insert(out.end(), b, b + 4);
}

// gzip (not zlib or raw deflate) framing, so that gunzip and MNIST loaders read the file.
std::vector<uint8_t> gzip_bytes(const std::string& path, const std::vector<uint8_t>& in) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    runtime_error(path, ": cannot start gzip compression: ", zs.msg ? zs.msg : "out of memory");
  std::vector<uint8_t> out(deflateBound(&zs, in.size()));
  // deflate takes uInt lengths: feed and drain in pieces below 4 GiB.
  constexpr size_t kPiece = size_t(1) << 30;
  size_t in_pos = 0;
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    const size_t in_left = in.size() - in_pos;
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(std::min(in_left, kPiece));
    const int flush = in_left <= kPiece ? Z_FINISH : Z_NO_FLUSH;
    if (zs.total_out == out.size()) out.resize(out.size() * 2);
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - zs.total_out, kPiece));
    const uInt before = zs.avail_in;
    ret = deflate(&zs, flush);
    in_pos += before - zs.avail_in;
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      deflateEnd(&zs);
      runtime_error(path, ": gzip compression failed: ", zs.msg ? zs.msg : "error");
    }
  }
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void write_idx_bytes(const std::string& path, const std::vector<uint8_t>& idx) {
  const bool gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  atomic_write(path, gz ? gzip_bytes(path, idx) : idx);
}

}  // namespace

void write_idx_images(const std::string& path, const uint8_t* images, int64_t n, int h, int w, int c) {
  if (n < 1 || h < 1 || w < 1 || c < 1 || n > 0xFFFFFFFFll)
    runtime_error(path, ": cannot write ", n, " images of ", h, "x", w, "x", c, " as IDX");
  GANCU_CHECK(images != nullptr, "write_idx_images(", path, "): null images");
  const size_t bytes = size_t(n) * h * w * c;
  std::vector<uint8_t> idx;
  idx.reserve(4 * 5 + bytes);
  // Magic: 0, 0, element type 0x08 (uint8), number of dims. c == 1 keeps the MNIST layout
  // exactly; colour adds a 4th dim for channels, innermost, as the data is HWC.
  const int ndims = c == 1 ? 3 : 4;
  put_be32(idx, 0x00000800u | uint32_t(ndims));
  put_be32(idx, uint32_t(n));
  put_be32(idx, uint32_t(h));
  put_be32(idx, uint32_t(w));
  if (ndims == 4) put_be32(idx, uint32_t(c));
  idx.insert(idx.end(), images, images + bytes);
  write_idx_bytes(path, idx);
}

void write_idx_labels(const std::string& path, const uint8_t* labels, int64_t n) {
  if (n < 1 || n > 0xFFFFFFFFll) runtime_error(path, ": cannot write ", n, " labels as IDX");
  GANCU_CHECK(labels != nullptr, "write_idx_labels(", path, "): null labels");
  std::vector<uint8_t> idx;
  idx.reserve(8 + size_t(n));
  put_be32(idx, 0x00000801u);
  put_be32(idx, uint32_t(n));
  idx.insert(idx.end(), labels, labels + n);
  write_idx_bytes(path, idx);
}

}  // namespace gancu
