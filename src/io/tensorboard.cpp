// TensorBoard event files. See include/gancu/tensorboard.h for the format.
#include "gancu/tensorboard.h"

#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"

namespace gancu {

namespace {

// CRC-32C: polynomial 0x1EDC6F41, initial value and final xor 0xFFFFFFFF, reflected in and out.
using Crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

// Protocol-buffer wire format, the part these messages need. A field is a key
// varint(number << 3 | wire type) followed by its value: a varint (type 0), 8 little-endian bytes
// (type 1), a varint length and that many bytes (type 2), or 4 little-endian bytes (type 5).
class ProtoWriter {
 public:
  void varint_field(int field, uint64_t v) {
    key(field, 0);
    varint(v);
  }
  // int64 and int32 are varints of the two's-complement value: a negative one takes 10 bytes.
  void int_field(int field, int64_t v) { varint_field(field, static_cast<uint64_t>(v)); }
  void double_field(int field, double v) {
    key(field, 1);
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    little_endian(bits, 8);
  }
  void float_field(int field, float v) {
    key(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    little_endian(bits, 4);
  }
  void bytes_field(int field, const void* data, size_t size) {
    key(field, 2);
    varint(size);
    out_.append(static_cast<const char*>(data), size);
  }
  void bytes_field(int field, const std::string& s) { bytes_field(field, s.data(), s.size()); }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire_type) { varint(uint64_t(field) << 3 | uint64_t(wire_type)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void little_endian(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string out_;
};

// tensorflow.Event field numbers.
enum EventField { kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5, kSessionLog = 7 };
// Summary.value, Summary.Value and Summary.Image field numbers.
enum SummaryField { kValue = 1 };
enum ValueField { kTag = 1, kSimpleValue = 2, kImage = 4 };
enum ImageField { kHeight = 1, kWidth = 2, kColorspace = 3, kEncodedImage = 4 };
enum SessionLogField { kStatus = 1 };
constexpr int kSessionStart = 1;

ProtoWriter event_header(int64_t step, double wall_time) {
  ProtoWriter e;
  e.double_field(kWallTime, wall_time);
  e.int_field(kStep, step);
  return e;
}

std::string summary_event(int64_t step, double wall_time, const std::string& value) {
  ProtoWriter summary;
  summary.bytes_field(kValue, value);
  ProtoWriter e = event_header(step, wall_time);
  e.bytes_field(kSummary, summary.str());
  return e.str();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  // The name becomes part of a file name: keep it to safe characters.
  std::string host = name;
  for (char& ch : host)
    if (ch == '/' || ch == ' ') ch = '_';
  return host;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  Crc32c crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace tfevents {

std::string file_version_event(double wall_time) {
  ProtoWriter e;
  e.double_field(kWallTime, wall_time);
  e.bytes_field(kFileVersion, std::string("brain.Event:2"));
  return e.str();
}

std::string scalar_event(const std::string& tag, int64_t step, double wall_time, float value) {
  ProtoWriter v;
  v.bytes_field(kTag, tag);
  v.float_field(kSimpleValue, value);
  return summary_event(step, wall_time, v.str());
}

std::string image_event(const std::string& tag, int64_t step, double wall_time,
                        const std::vector<uint8_t>& png, int h, int w, int c) {
  ProtoWriter image;
  image.int_field(kHeight, h);
  image.int_field(kWidth, w);
  image.int_field(kColorspace, c);
  image.bytes_field(kEncodedImage, png.data(), png.size());
  ProtoWriter v;
  v.bytes_field(kTag, tag);
  v.bytes_field(kImage, image.str());
  return summary_event(step, wall_time, v.str());
}

std::string session_start_event(int64_t step, double wall_time) {
  ProtoWriter log;
  log.varint_field(kStatus, kSessionStart);
  ProtoWriter e = event_header(step, wall_time);
  e.bytes_field(kSessionLog, log.str());
  return e.str();
}

std::string frame_record(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  put(data.size(), 8);
  put(masked_crc32c(out.data(), 8), 4);
  out += data;
  put(masked_crc32c(data.data(), data.size()), 4);
  return out;
}

}  // namespace tfevents

double wall_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventWriter::EventWriter(const std::string& dir) {
  make_dirs(dir);
  const double now = wall_time_now();
  const std::string base =
      dir + "/events.out.tfevents." + std::to_string(static_cast<long long>(now)) + "." + host_name();
  // "x": fail instead of appending to a file another writer owns.
  for (int n = 0; !file_; ++n) {
    path_ = n == 0 ? base : base + "." + std::to_string(n);
    file_ = std::fopen(path_.c_str(), "wbx");
    if (!file_ && (errno != EEXIST || n >= 1000))
      runtime_error(path_, ": cannot create the TensorBoard event file: ", std::strerror(errno));
  }
  try {
    write_record(tfevents::file_version_event(now));
  } catch (...) {
    std::remove(path_.c_str());  // a file without its version record is of no use
    throw;
  }
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::write_record(const std::string& event) {
  if (failed_) runtime_error(path_, ": an earlier write failed; no more events are written to this file");
  const std::string record = tfevents::frame_record(event);
  errno = 0;
  if (std::fwrite(record.data(), 1, record.size(), file_) == record.size() && std::fflush(file_) == 0) {
    good_size_ += static_cast<long>(record.size());
    return;
  }
  const int err = errno ? errno : EIO;
  failed_ = true;
  // Drop the torn record and whatever stdio still buffers of it, so the file ends on a whole record.
  std::fclose(file_);
  file_ = nullptr;
  const bool cut = ::truncate(path_.c_str(), good_size_) == 0;
  runtime_error(path_, ": cannot write TensorBoard event: ", std::strerror(err),
                cut ? " (the file keeps the events written before)" : "");
}

void EventWriter::add_scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  write_record(tfevents::scalar_event(tag, step, wall_time < 0 ? wall_time_now() : wall_time,
                                      static_cast<float>(value)));
}

void EventWriter::add_image(const std::string& tag, int64_t step, const std::vector<uint8_t>& png, int h,
                            int w, int c, double wall_time) {
  GANCU_CHECK(h > 0 && w > 0 && c >= 1 && c <= 4, "add_image(", tag, "): image of ", h, "x", w, "x", c);
  write_record(tfevents::image_event(tag, step, wall_time < 0 ? wall_time_now() : wall_time, png, h, w, c));
}

void EventWriter::add_png_file(const std::string& tag, int64_t step, const std::string& png_path,
                               double wall_time) {
  const Image image = read_png(png_path);
  add_image(tag, step, read_file(png_path), image.h, image.w, image.c, wall_time);
}

void EventWriter::mark_resume(int64_t checkpoint_step, double wall_time) {
  write_record(
      tfevents::session_start_event(checkpoint_step + 1, wall_time < 0 ? wall_time_now() : wall_time));
}

}  // namespace gancu
