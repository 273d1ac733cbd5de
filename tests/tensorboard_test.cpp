// TensorBoard event files: the CRC against its standard check value, the records parsed back by an
// independent reader written here (framing, both CRCs, every protobuf field), failures that name
// the file and leave it readable, and the files read by TensorBoard's own loader (EventAccumulator,
// through tools/read_tfevents.py) where the tensorboard package is installed.
#include "gancu/tensorboard.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "gancu/image_io.h"
#include "gancu/subprocess.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::read_raw;
using testing_io::TempDir;
using testing_io::throws_with;

// ---- An independent reader: TFRecord frames and protobuf fields --------------------------------

uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}

// Splits a file into its records, checking each length and CRC; fails the test on any mismatch.
std::vector<std::string> read_records(const std::string& path) {
  const std::vector<uint8_t> raw = read_raw(path);
  const std::string s(raw.begin(), raw.end());
  std::vector<std::string> records;
  size_t at = 0;
  while (at < s.size()) {
    EXPECT_GE(s.size() - at, 12u) << "torn header at " << at;
    if (s.size() - at < 12) break;
    const uint64_t len = get_le(s, at, 8);
    EXPECT_EQ(get_le(s, at + 8, 4), masked_crc32c(s.data() + at, 8)) << "length CRC at " << at;
    EXPECT_GE(s.size() - at - 12, len + 4) << "torn record at " << at;
    if (s.size() - at - 12 < len + 4) break;
    const std::string data = s.substr(at + 12, len);
    EXPECT_EQ(get_le(s, at + 12 + len, 4), masked_crc32c(data.data(), data.size())) << "data CRC at " << at;
    records.push_back(data);
    at += 12 + len + 4;
  }
  return records;
}

struct Field {
  int number = 0, wire = 0;
  uint64_t num = 0;   // varint, fixed64 or fixed32 value
  std::string bytes;  // length-delimited value
};

uint64_t get_varint(const std::string& s, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && at < s.size(); shift += 7) {
    const uint8_t b = uint8_t(s[at++]);
    v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  ADD_FAILURE() << "bad varint";
  return v;
}

// The fields of one message, by number (a repeated field keeps its last value; none here repeats).
std::map<int, Field> parse_message(const std::string& s) {
  std::map<int, Field> fields;
  size_t at = 0;
  while (at < s.size()) {
    const uint64_t key = get_varint(s, at);
    Field f;
    f.number = int(key >> 3);
    f.wire = int(key & 7);
    switch (f.wire) {
      case 0:
        f.num = get_varint(s, at);
        break;
      case 1:
        f.num = get_le(s, at, 8);
        at += 8;
        break;
      case 5:
        f.num = get_le(s, at, 4);
        at += 4;
        break;
      case 2: {
        const uint64_t len = get_varint(s, at);
        f.bytes = s.substr(at, len);
        at += len;
        break;
      }
      default:
        ADD_FAILURE() << "unexpected wire type " << f.wire;
        return fields;
    }
    EXPECT_LE(at, s.size());
    fields[f.number] = f;
  }
  return fields;
}

double as_double(const Field& f) {
  double d;
  std::memcpy(&d, &f.num, 8);
  return d;
}
float as_float(const Field& f) {
  const uint32_t bits = uint32_t(f.num);
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// ---- Tests -----------------------------------------------------------------------------------------

TEST(Crc32c, StandardCheckValueAndMask) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  // 32 bytes of zeros: the iSCSI test vector of RFC 3720, B.4.
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const uint32_t crc = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TfEvents, MessagesEncodeEveryField) {
  // file version
  auto v = parse_message(tfevents::file_version_event(1.5));
  EXPECT_EQ(v[1].wire, 1);
  EXPECT_EQ(as_double(v[1]), 1.5);
  EXPECT_EQ(v[3].bytes, "brain.Event:2");

  // scalar: Event{wall_time, step, summary{value{tag, simple_value}}}; a step past 2^35 needs a
  // multi-byte varint.
  const int64_t big_step = (int64_t(1) << 35) + 3;
  auto e = parse_message(tfevents::scalar_event("loss/d", big_step, 1700000000.25, 0.75f));
  EXPECT_EQ(as_double(e[1]), 1700000000.25);
  EXPECT_EQ(e[2].wire, 0);
  EXPECT_EQ(int64_t(e[2].num), big_step);
  auto summary = parse_message(e[5].bytes);
  auto value = parse_message(summary[1].bytes);
  EXPECT_EQ(value[1].bytes, "loss/d");
  EXPECT_EQ(value[2].wire, 5);
  EXPECT_EQ(as_float(value[2]), 0.75f);

  // a negative int64 is the 10-byte varint of its two's complement
  auto neg = parse_message(tfevents::scalar_event("x", -1, 0, 0));
  EXPECT_EQ(neg[2].num, ~uint64_t(0));

  // image
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0, 1, 2, 0xFF};
  auto ie = parse_message(tfevents::image_event("samples", 7, 2.0, png, 300, 200, 3));
  EXPECT_EQ(ie[2].num, 7u);
  auto iv = parse_message(parse_message(ie[5].bytes)[1].bytes);
  EXPECT_EQ(iv[1].bytes, "samples");
  auto im = parse_message(iv[4].bytes);
  EXPECT_EQ(im[1].num, 300u);
  EXPECT_EQ(im[2].num, 200u);
  EXPECT_EQ(im[3].num, 3u);
  EXPECT_EQ(im[4].bytes, std::string(png.begin(), png.end()));

  // session start
  auto ss = parse_message(tfevents::session_start_event(42, 3.0));
  EXPECT_EQ(ss[2].num, 42u);
  EXPECT_EQ(parse_message(ss[7].bytes)[1].num, 1u);  // SessionLog.START
}

TEST(TfEvents, FrameRecord) {
  const std::string data = "hello";
  const std::string r = tfevents::frame_record(data);
  ASSERT_EQ(r.size(), 12u + 5 + 4);
  EXPECT_EQ(get_le(r, 0, 8), 5u);
  EXPECT_EQ(get_le(r, 8, 4), masked_crc32c(r.data(), 8));
  EXPECT_EQ(r.substr(12, 5), data);
  EXPECT_EQ(get_le(r, 17, 4), masked_crc32c("hello", 5));
}

TEST(EventWriter, WritesRecordsThatParseBack) {
  TempDir dir;
  const std::string logdir = dir / "run/tb";  // created by the writer
  std::vector<uint8_t> png;
  {
    EventWriter tb(logdir);
    EXPECT_EQ(path_dirname(tb.path()), logdir);
    EXPECT_EQ(path_basename(tb.path()).rfind("events.out.tfevents.", 0), 0u);
    tb.add_scalar("loss/d", 10, 0.5, 100.0);
    tb.add_scalar("loss/g", 10, 1.25);
    // Every record is on disk when the call returns: read it while the writer is open.
    EXPECT_EQ(read_records(tb.path()).size(), 3u);
    const std::vector<uint8_t> pixels = {0, 64, 128, 255, 10, 20};
    write_png(dir / "g.png", pixels.data(), 2, 3, 1);
    png = read_file(dir / "g.png");
    tb.add_png_file("samples", 10, dir / "g.png");
  }
  const auto files = event_files(logdir);
  ASSERT_EQ(files.size(), 1u);
  const auto records = read_records(files[0]);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(parse_message(records[0])[3].bytes, "brain.Event:2");
  auto s = parse_message(records[1]);
  EXPECT_EQ(as_double(s[1]), 100.0);
  EXPECT_EQ(s[2].num, 10u);
  auto v = parse_message(parse_message(s[5].bytes)[1].bytes);
  EXPECT_EQ(v[1].bytes, "loss/d");
  EXPECT_EQ(as_float(v[2]), 0.5f);
  // wall time now: within a day of this machine's clock
  EXPECT_NEAR(as_double(parse_message(records[2])[1]), wall_time_now(), 86400.0);
  auto im = parse_message(parse_message(parse_message(parse_message(records[3])[5].bytes)[1].bytes)[4].bytes);
  EXPECT_EQ(im[1].num, 2u);  // height
  EXPECT_EQ(im[2].num, 3u);  // width
  EXPECT_EQ(im[3].num, 1u);  // gray
  EXPECT_EQ(im[4].bytes, std::string(png.begin(), png.end()));
}

TEST(EventWriter, TwoWritersInOneFolderGetTwoFiles) {
  TempDir dir;
  EventWriter a(dir.path()), b(dir.path());
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(event_files(dir.path()).size(), 2u);
}

TEST(EventWriter, UnwritableFolderNamesTheFile) {
  TempDir dir;
  testing_io::write_raw(dir / "file", {1});
  // A regular file where the folder should be.
  EXPECT_TRUE(throws_with<RuntimeError>([&] { EventWriter tb(dir / "file"); }, {dir / "file"}));
  if (::geteuid() != 0) {  // root writes anywhere
    make_dirs(dir / "ro");
    ::chmod((dir / "ro").c_str(), 0555);
    EXPECT_TRUE(throws_with<RuntimeError>([&] { EventWriter tb(dir / "ro"); },
                                          {dir / "ro/events.out.tfevents.", "Permission denied"}));
  }
  EXPECT_TRUE(throws_with<RuntimeError>([&] { EventWriter tb(dir / "file/sub"); }, {dir / "file/sub"}));
}

TEST(EventWriter, FailedWriteKeepsTheFileReadable) {
  TempDir dir;
  std::string path;
  rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process
  ::testing::AssertionResult result = ::testing::AssertionFailure();
  {
    EventWriter tb(dir.path());
    path = tb.path();
    tb.add_scalar("a", 1, 1.0);
    const std::vector<uint8_t> big(100000, 7);  // not a real PNG: the writer does not decode it
    rlimit small = old_limit;
    small.rlim_cur = 20000;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    result = throws_with<RuntimeError>([&] { tb.add_image("big", 2, big, 10, 10, 1); },
                                       {path, "File too large", "keeps the events written before"});
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    EXPECT_TRUE(
        throws_with<RuntimeError>([&] { tb.add_scalar("a", 3, 1.0); }, {path, "earlier write failed"}));
  }
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(result);
  EXPECT_EQ(read_records(path).size(), 2u);  // version + the first scalar, no torn tail
}

// ---- TensorBoard's own reader ---------------------------------------------------------------------

// A python with the tensorboard package: $GANCU_TENSORBOARD_PYTHON, the build folder's
// tensorboard-venv (tools/setup_tensorboard.sh), or the system python3 if it has the package.
std::string tensorboard_python() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("GANCU_TENSORBOARD_PYTHON")) candidates.push_back(env);
  candidates.push_back(std::string(GANCU_BUILD_DIR) + "/tensorboard-venv/bin/python");
  candidates.push_back("/usr/bin/python3");
  for (const std::string& py : candidates) {
    if (find_executable(py).empty()) continue;
    if (run_process({py, "-c", "import tensorboard.backend.event_processing.event_accumulator"}).ok())
      return py;
  }
  return "";
}

nlohmann::json read_with_tensorboard(const std::string& python, const std::string& path) {
  const ProcessResult r =
      run_process({python, std::string(GANCU_SOURCE_DIR) + "/tools/read_tfevents.py", path});
  EXPECT_TRUE(r.ok()) << r.status_text() << "\n" << r.err;
  return r.ok() ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

std::string hex(const std::vector<uint8_t>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

#define REQUIRE_TENSORBOARD(py)                                                                           \
  const std::string py = tensorboard_python();                                                            \
  if (py.empty())                                                                                         \
  GTEST_SKIP() << "the tensorboard Python package is not installed: run tools/setup_tensorboard.sh (pip " \
                  "installs it into build/tensorboard-venv; tools/test.sh does this) or set "             \
                  "GANCU_TENSORBOARD_PYTHON to a python that has it"

TEST(EventWriterTensorBoard, ScalarsAndImagesReadByEventAccumulator) {
  REQUIRE_TENSORBOARD(python);
  TempDir dir;
  const std::vector<uint8_t> rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9, 1, 2, 3, 200, 100, 50};
  write_png(dir / "grid.png", rgb.data(), 2, 3, 3);
  const std::vector<uint8_t> png = read_file(dir / "grid.png");
  std::string path;
  {
    EventWriter tb(dir / "logs");
    path = tb.path();
    for (int64_t step = 0; step <= 40; step += 10) {
      tb.add_scalar("loss/d", step, 1.0 / (step + 1), 1000.0 + double(step));
      tb.add_scalar("loss/g", step, -2.5 * step);
    }
    tb.add_image("samples", 20, png, 2, 3, 3);
    tb.add_png_file("samples", 40, dir / "grid.png");
  }
  const nlohmann::json got = read_with_tensorboard(python, path);
  EXPECT_EQ(got["file_version"], 2.0);  // TensorBoard parses "brain.Event:2"
  const auto& d = got["scalars"]["loss/d"];
  ASSERT_EQ(d.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const int64_t step = 10 * i;
    EXPECT_EQ(d[i][0].get<int64_t>(), step);
    EXPECT_DOUBLE_EQ(d[i][1].get<double>(), 1000.0 + double(step));
    EXPECT_EQ(d[i][2].get<double>(), double(float(1.0 / (step + 1))));  // stored as float32
  }
  EXPECT_EQ(got["scalars"]["loss/g"][4][2].get<double>(), -100.0);
  const auto& images = got["images"]["samples"];
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0]["step"], 20);
  EXPECT_EQ(images[1]["step"], 40);
  EXPECT_EQ(images[0]["height"], 2);
  EXPECT_EQ(images[0]["width"], 3);
  EXPECT_EQ(images[0]["png_hex"], hex(png));
  EXPECT_EQ(images[1]["png_hex"], hex(png));
}

TEST(EventWriterTensorBoard, TornLastRecordAndResumedRun) {
  REQUIRE_TENSORBOARD(python);
  TempDir dir;
  {
    EventWriter first(dir.path());
    for (int64_t step = 1; step <= 5; ++step) first.add_scalar("loss", step, double(step));
  }
  {
    // A resumed run from the checkpoint at step 3 writes steps 4 and 5 again, in a second file.
    EventWriter resumed(dir.path());
    resumed.mark_resume(3);
    for (int64_t step = 4; step <= 5; ++step) resumed.add_scalar("loss", step, 10.0 * step);
    // ... and is killed in the middle of a record.
    const std::string torn = tfevents::frame_record(tfevents::scalar_event("loss", 6, 0, 60)).substr(0, 20);
    std::FILE* f = std::fopen(resumed.path().c_str(), "ab");
    ASSERT_NE(f, nullptr);
    std::fwrite(torn.data(), 1, torn.size(), f);
    std::fclose(f);
  }
  const nlohmann::json got = read_with_tensorboard(python, dir.path());
  const auto& loss = got["scalars"]["loss"];
  std::vector<std::pair<int64_t, double>> points;
  for (const auto& e : loss) points.emplace_back(e[0].get<int64_t>(), e[2].get<double>());
  // Steps 1-3 from the first file; 4 and 5 once, from the resumed one; the torn step 6 is dropped.
  const std::vector<std::pair<int64_t, double>> want = {{1, 1.0}, {2, 2.0}, {3, 3.0}, {4, 40.0}, {5, 50.0}};
  EXPECT_EQ(points, want) << loss.dump();
}

}  // namespace
}  // namespace gancu
