// The IDX reader (MNIST, Fashion-MNIST, gancu's sample files). See include/gancu/data.h.
//
// IDX layout: 4 magic bytes (0, 0, element type, number of dims), one big-endian uint32 per dim,
// then the elements in row-major order. Only uint8 elements (type 0x08) are supported.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "gancu/check.h"
#include "gancu/data.h"

namespace gancu {

namespace {

// Limits that no real image file comes near; a header beyond them is corrupt, and refusing it
// up front avoids trying to allocate what it claims.
constexpr uint32_t kMaxSide = 1 << 14;             // rows, cols
constexpr uint32_t kMaxChannels = 4;               // gray, gray+alpha, RGB, RGBA
constexpr uint64_t kMaxBytes = uint64_t(1) << 36;  // 64 GiB of pixels

const char* idx_type_name(uint8_t type) {
  switch (type) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

std::string hex8(uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v);
  return buf;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// A gzFile that closes itself and turns zlib's errors into messages naming the file.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (!file_) runtime_error(path_, ": cannot open: ", errno ? std::strerror(errno) : "out of memory");
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() {
    if (file_) gzclose_r(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to `size` bytes; returns fewer only at the end of the data. A read or
  // decompression error throws, except a gzip stream that ends early, which is reported as
  // truncation (`cut_short`) so the caller can say how much it got.
  size_t read(void* out, size_t size) {
    size_t total = 0;
    while (total < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - total, 1u << 24));
      const int got = gzread(file_, static_cast<uint8_t*>(out) + total, chunk);
      if (got > 0) total += static_cast<size_t>(got);
      if (got == static_cast<int>(chunk)) continue;
      // A short read is the end of the data or an error; gzread reports a stream that ends
      // early (Z_BUF_ERROR) as a plain end of data, so ask gzerror which it was.
      int code = Z_OK;
      const char* msg = gzerror(file_, &code);
      if (code == Z_BUF_ERROR) {  // zlib: "unexpected end of file"
        cut_short_ = true;
        return total;
      }
      if (code == Z_ERRNO) runtime_error(path_, ": read failed: ", std::strerror(errno));
      if (code != Z_OK) {
        // zlib prefixes its message with the path; the message names the file once.
        std::string why = msg ? msg : "unknown error";
        if (why.rfind(path_ + ": ", 0) == 0) why.erase(0, path_.size() + 2);
        runtime_error(path_, ": corrupt gzip data: ", why);
      }
      if (got <= 0) break;
    }
    return total;
  }
  bool cut_short() const { return cut_short_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
  bool cut_short_ = false;
};

struct IdxHeader {
  uint8_t type = 0;
  std::vector<uint32_t> dims;
};

// Reads and checks the magic number and dims. `what` ("images", "labels") and `allowed_dims`
// describe what the caller expects, so that e.g. a labels file passed as images says so.
IdxHeader read_header(GzReader& in, const char* what, std::initializer_list<int> allowed_dims) {
  const std::string& path = in.path();
  uint8_t magic[4];
  const size_t got = in.read(magic, 4);
  if (got < 4)
    runtime_error(path, ": not an IDX file: only ", got, " bytes, shorter than the 4-byte magic number");
  const uint32_t magic32 =
      uint32_t(magic[0]) << 24 | uint32_t(magic[1]) << 16 | uint32_t(magic[2]) << 8 | magic[3];
  if (magic[0] != 0 || magic[1] != 0)
    runtime_error(path, ": not an IDX file: wrong magic number ", hex32(magic32),
                  " (IDX files start with two zero bytes, e.g. 0x00000803 for MNIST images)");
  IdxHeader h;
  h.type = magic[2];
  if (h.type != 0x08)
    runtime_error(path, ": unsupported IDX element type ", hex8(h.type), " (", idx_type_name(h.type),
                  "; magic ", hex32(magic32), "): gancu reads uint8 (0x08) only");
  const int ndims = magic[3];
  if (std::find(allowed_dims.begin(), allowed_dims.end(), ndims) == allowed_dims.end()) {
    std::ostringstream expected;
    for (int d : allowed_dims) expected << (expected.tellp() > 0 ? " or " : "") << hex32(0x800 | d);
    runtime_error(path, ": wrong magic number ", hex32(magic32), " for ", what, " (expected ", expected.str(),
                  "): the file has ", ndims, " dimension", ndims == 1 ? "" : "s",
                  ndims == 1   ? ", so it looks like a labels file"
                  : ndims == 3 ? ", so it looks like an images file"
                               : "");
  }
  uint8_t raw[4 * 4];
  const size_t want = size_t(4) * ndims;
  const size_t have = in.read(raw, want);
  if (have < want)
    runtime_error(path, ": truncated header: ", ndims, " dimensions need ", 4 + want,
                  " bytes but the file holds ", 4 + have);
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* b = raw + 4 * d;
    h.dims.push_back(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]);
  }
  return h;
}

// Reads exactly `size` bytes of data, then checks that nothing follows. Reading past the data
// also makes zlib verify the gzip trailer's CRC, so corruption anywhere in the stream is caught.
std::vector<uint8_t> read_body(GzReader& in, uint64_t size, const std::string& promise) {
  // The buffer grows only as data arrives, a megabyte at a time: a header that promises gigabytes
  // in a file of twenty bytes (found by fuzz_idx_gzip: 4,294,967,295 labels) costs a megabyte, not
  // an allocation of the promised size.
  std::vector<uint8_t> data;
  constexpr size_t kChunk = size_t(1) << 20;
  while (data.size() < size) {
    const size_t old = data.size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - old, kChunk));
    data.resize(old + want);
    const size_t got = in.read(data.data() + old, want);
    if (got < want) {
      data.resize(old + got);
      runtime_error(in.path(), ": truncated: header promises ", promise, " (", size,
                    " bytes) but the file holds ", data.size(),
                    in.cut_short() ? " (the gzip stream ends early)" : "");
    }
  }
  uint8_t extra[4096];
  uint64_t trailing = 0;
  size_t got;
  while ((got = in.read(extra, sizeof extra)) > 0 && trailing < (uint64_t(1) << 30)) trailing += got;
  if (in.cut_short())
    runtime_error(in.path(), ": truncated gzip stream: the data is complete but the gzip trailer is missing");
  if (trailing > 0)
    runtime_error(in.path(), ": ", trailing, " unexpected bytes after the ", promise, " the header promises",
                  " (wrong header, or the file is not what its name says)");
  return data;
}

}  // namespace

Dataset read_idx_images(const std::string& path) {
  GzReader in(path);
  const IdxHeader h = read_header(in, "images", {3, 4});
  const uint32_t n = h.dims[0], rows = h.dims[1], cols = h.dims[2];
  const uint32_t channels = h.dims.size() == 4 ? h.dims[3] : 1;
  if (n == 0 || rows == 0 || cols == 0 || channels == 0)
    runtime_error(path, ": header has a zero dimension (", n, " images of ", rows, "x", cols, "x", channels,
                  "): no images");
  if (rows > kMaxSide || cols > kMaxSide || channels > kMaxChannels)
    runtime_error(path, ": absurd dimensions in header: images of ", rows, "x", cols, "x", channels,
                  " (at most ", kMaxSide, "x", kMaxSide, "x", kMaxChannels, "); the header is corrupt");
  const uint64_t bytes = uint64_t(n) * rows * cols * channels;
  if (bytes > kMaxBytes)
    runtime_error(path, ": absurd dimensions in header: ", n, " images of ", rows, "x", cols, "x", channels,
                  " are ", bytes, " bytes; the header is corrupt");
  std::ostringstream promise;
  promise << n << " images of " << rows << "x" << cols;
  if (h.dims.size() == 4) promise << "x" << channels;

  Dataset d;
  d.name = path;
  d.h = static_cast<int>(rows);
  d.w = static_cast<int>(cols);
  d.c = static_cast<int>(channels);
  d.count = n;
  d.images = read_body(in, bytes, promise.str());
  return d;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  GzReader in(path);
  const IdxHeader h = read_header(in, "labels", {1});
  const uint32_t n = h.dims[0];
  if (n == 0) runtime_error(path, ": header promises 0 labels");
  std::vector<uint8_t> labels = read_body(in, n, std::to_string(n) + " labels");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= kMaxClasses)
      runtime_error(path, ": label ", int(labels[i]), " at index ", i, " is out of range (labels are 0..",
                    kMaxClasses - 1, ")");
  return labels;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path) {
  Dataset d = read_idx_images(images_path);
  if (labels_path.empty()) return d;
  d.labels = read_idx_labels(labels_path);
  if (int64_t(d.labels.size()) != d.count)
    runtime_error(labels_path, ": label count mismatch: ", d.labels.size(), " labels but ", images_path,
                  " holds ", d.count, " images");
  d.num_classes = kMaxClasses;
  return d;
}

}  // namespace gancu
