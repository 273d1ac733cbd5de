// TensorBoard event files: scalars and images that `tensorboard --logdir RUN` shows, written
// without TensorFlow.
//
// An event file is a sequence of TFRecord records, each framing one serialized `tensorflow.Event`
// protobuf message:
//
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   data[length]                  | uint32 masked CRC-32C of data
//
// with mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The first record carries
// file_version "brain.Event:2"; after it come the events. The fields gancu writes (from
// tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto):
//
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//             SessionLog session_log = 7; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//   SessionLog { SessionStatus status = 1; }   (START = 1)
//
// These few fields are encoded by hand (protobuf wire format: varints, fixed64/fixed32 and
// length-delimited fields); no Debian library writes TensorBoard files, and a generated protobuf
// binding would bring a build-time compiler for five messages. The CRC is Boost.CRC's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace gancu {

// CRC-32C (Castagnoli, the iSCSI polynomial 0x1EDC6F41, reflected): crc32c("123456789") is
// 0xE3069283. And the TFRecord mask applied to it.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

// The pieces of an event file, exposed for tests and for tools that want to build records.
namespace tfevents {

// A serialized tensorflow.Event message.
std::string file_version_event(double wall_time);
std::string scalar_event(const std::string& tag, int64_t step, double wall_time, float value);
// `png` is a complete PNG file; colorspace is the channel count c: 1 gray, 2 gray + alpha,
// 3 RGB, 4 RGBA.
std::string image_event(const std::string& tag, int64_t step, double wall_time,
                        const std::vector<uint8_t>& png, int h, int w, int c);
// SessionLog START at `step`: TensorBoard then drops the events it read before at steps >= step.
std::string session_start_event(int64_t step, double wall_time);

// The TFRecord frame around one message: 12-byte header, data, 4-byte footer.
std::string frame_record(const std::string& data);

}  // namespace tfevents

// Seconds since the Unix epoch, with sub-second resolution: TensorBoard's wall_time.
double wall_time_now();

// Appends events to a new file `DIR/events.out.tfevents.<seconds>.<host>` (".1", ".2", ... is
// appended where a file of that name exists, e.g. a resumed run started within the same second).
//
// Every record is written with one write and flushed at once, so a crash loses nothing that an
// add_* call returned from; TensorBoard reads a file that is still being written, and skips a
// torn last record. A failed write (full disk, file-size limit) is a RuntimeError naming the file;
// the file is cut back to its last whole record, so it stays readable, and the writer refuses
// further records.
//
//   EventWriter tb(run_dir);
//   tb.add_scalar("loss/d", step, loss_d);
//   tb.add_png_file("samples", step, run_dir + "/samples/step_000100.png");
class EventWriter {
 public:
  // Creates `dir` if needed (mkdir -p) and the event file in it, and writes the file-version
  // record. An unwritable folder is a RuntimeError naming the file.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // wall_time < 0 means now.
  void add_scalar(const std::string& tag, int64_t step, double value, double wall_time = -1);
  // An encoded PNG of h x w pixels and c channels (1 to 4).
  void add_image(const std::string& tag, int64_t step, const std::vector<uint8_t>& png, int h, int w, int c,
                 double wall_time = -1);
  // A PNG file as it is (read_png is used for its size and channels; the bytes go in unchanged).
  void add_png_file(const std::string& tag, int64_t step, const std::string& png_path, double wall_time = -1);
  // Marks a run resumed from the checkpoint at `checkpoint_step`: writes SessionLog START at
  // checkpoint_step + 1, so that TensorBoard discards what earlier files hold after the checkpoint
  // (the resumed run logs those steps again) instead of drawing both. Call it first after opening.
  void mark_resume(int64_t checkpoint_step, double wall_time = -1);

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
  long good_size_ = 0;  // bytes of whole records written so far
  bool failed_ = false;
};

}  // namespace gancu
