// safetensors: round trips, the layout the spec and the reference implementation expect
// (header padding, alignment, tiling of the buffer), each corruption the reader must refuse,
// and a cross-check with Python in both directions (the safetensors package when installed,
// otherwise a reader and writer of a few lines with json + struct).
#include "gancu/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gancu/check.h"
#include "gancu/fileutil.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::find_python;
using testing_io::read_raw;
using testing_io::TempDir;
using testing_io::throws_with;
using testing_io::write_raw;

std::map<std::string, TensorData> sample_tensors() {
  std::vector<float> w(6);
  for (int i = 0; i < 6; ++i) w[i] = 0.5f * i - 1.0f;
  std::vector<double> d(4);
  for (int i = 0; i < 4; ++i) d[i] = i / 3.0;
  const int64_t step = 123456789012;
  const int32_t idx[3] = {-1, 0, 7};
  const uint8_t px[4] = {0, 1, 254, 255};
  std::map<std::string, TensorData> t;
  t["G.fc1.weight"] = make_tensor<float>({2, 3}, w.data());
  t["d"] = make_tensor<double>({4}, d.data());
  t["step"] = make_tensor<int64_t>({}, &step);
  t["idx"] = make_tensor<int32_t>({3}, idx);
  t["px"] = make_tensor<uint8_t>({2, 2}, px);
  t["empty"] = make_tensor<float>({0, 3}, nullptr);
  return t;
}

const std::map<std::string, std::string> kMeta = {{"format", "pt"}, {"gancu", "0.1"}};

TEST(SafeTensors, RoundTrip) {
  TempDir dir;
  const std::string p = dir / "ckpt.safetensors";
  const auto tensors = sample_tensors();
  write_safetensors(p, tensors, kMeta);
  const SafeTensors back = read_safetensors(p);
  EXPECT_EQ(back.metadata, kMeta);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const TensorData& b = back.tensors.at(name);
    EXPECT_EQ(b.dtype, t.dtype) << name;
    EXPECT_EQ(b.shape, t.shape) << name;
    EXPECT_EQ(b.bytes, t.bytes) << name;
  }
  EXPECT_EQ(tensor_values<int64_t>(back.tensors.at("step"), "step"), std::vector<int64_t>{123456789012});
  EXPECT_EQ(tensor_values<float>(back.tensors.at("G.fc1.weight"), "w")[5], 1.5f);
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { tensor_values<float>(back.tensors.at("d"), p + ": tensor 'd'"); },
                                {p, "'d'", "dtype is F64, expected F32"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(SafeTensors, LayoutFollowsTheSpec) {
  const std::vector<uint8_t> file = serialize_safetensors(sample_tensors(), kMeta);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(file[i]) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u) << "the data buffer starts at a multiple of 8";
  EXPECT_EQ(file[8], '{');
  const std::string text(file.begin() + 8, file.begin() + 8 + n);
  const nlohmann::json header = nlohmann::json::parse(text);
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["G.fc1.weight"]["dtype"], "F32");
  EXPECT_EQ(header["G.fc1.weight"]["shape"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(header["step"]["shape"], nlohmann::json::array());
  uint64_t total = 0;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const uint64_t begin = info["data_offsets"][0], end = info["data_offsets"][1];
    EXPECT_EQ(begin % safetensors_dtype_size(info["dtype"]), 0u) << name << " is aligned to its element size";
    total += end - begin;
  }
  EXPECT_EQ(total, file.size() - 8 - n);
}

TEST(SafeTensors, WriterRefusesInconsistentTensors) {
  TempDir dir;
  const std::string p = dir / "bad.safetensors";
  std::map<std::string, TensorData> t;
  t["x"] = TensorData{"BF16", {2}, std::vector<uint8_t>(4)};
  EXPECT_TRUE(
      throws_with<RuntimeError>([&] { write_safetensors(p, t); }, {p, "'x'", "unsupported dtype 'BF16'"}));
  t["x"] = TensorData{"F32", {2}, std::vector<uint8_t>(7)};
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_safetensors(p, t); }, {p, "'x'", "7 bytes", "[2]"}));
  t.clear();
  t["__metadata__"] = TensorData{"U8", {1}, {0}};
  EXPECT_TRUE(throws_with<RuntimeError>([&] { write_safetensors(p, t); }, {p, "reserved"}));
  EXPECT_TRUE(dir.entries().empty());
}

// A file with the given header text (unpadded) and data; `claimed` overrides the length field.
std::vector<uint8_t> st_file(const std::string& header, const std::vector<uint8_t>& data,
                             int64_t claimed = -1) {
  const uint64_t n = claimed >= 0 ? uint64_t(claimed) : header.size();
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

TEST(SafeTensors, ReaderRefusesEveryCorruption) {
  TempDir dir;
  const std::string p = dir / "corrupt.safetensors";
  const std::vector<uint8_t> eight(8, 1);
  auto check = [&](const std::vector<uint8_t>& bytes, const std::vector<std::string>& pieces) {
    write_raw(p, bytes);
    std::vector<std::string> all = pieces;
    all.push_back(p);
    return throws_with<RuntimeError>([&] { read_safetensors(p); }, all);
  };
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  EXPECT_TRUE(check({1, 2, 3}, {"3 bytes, shorter than the 8-byte header length"}));
  EXPECT_TRUE(
      check(st_file("{" + ok_entry + "}", eight, 1000), {"header length 1000 reaches beyond the end"}));
  EXPECT_TRUE(check(st_file("[1,2]", {}), {"not a JSON object"}));
  EXPECT_TRUE(check(st_file("{\"a\": {\"dtype\": ", eight), {"header is not valid JSON"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", eight),
                    {"tensor 'a'", "unsupported dtype 'BF16'"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", eight),
                    {"tensor 'a'", "data_offsets [0, 16] are out of range", "8 bytes"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
                    {"tensor 'a'", "hold 8 bytes but shape [3] of F32 needs 12"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight),
                    {"tensor 'a'", "out of range"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
                    {"tensor 'a'", "non-negative integers"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                            eight),
                    {"tensors 'a' and 'b' overlap"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", eight),
                    {"bytes 0..4 of the data belong to no tensor"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", eight),
                    {"4 bytes after the last tensor belong to no tensor"}));
  EXPECT_TRUE(check(st_file("{" + ok_entry + "," + ok_entry + "}", eight), {"names 'a' twice"}));
  EXPECT_TRUE(check(st_file("{" + ok_entry + R"(,"__metadata__":{"k":3}})", eight),
                    {"__metadata__ value of 'k' is not a string"}));
  EXPECT_TRUE(
      check(st_file(R"({"a":{"dtype":"F32","shape":[2]}})", eight), {"tensor 'a'", "no data_offsets"}));
  EXPECT_TRUE(check(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.0,8]}})", eight),
                    {"tensor 'a'", "data_offsets"}));
  // Truncating a good file anywhere is caught.
  const std::vector<uint8_t> good = serialize_safetensors(sample_tensors(), kMeta);
  EXPECT_TRUE(check(std::vector<uint8_t>(good.begin(), good.end() - 1), {}));
  EXPECT_TRUE(check(std::vector<uint8_t>(good.begin(), good.begin() + 40), {"reaches beyond the end"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_safetensors(dir / "none.safetensors"); },
                                        {"none.safetensors", "No such file"}));
  // A valid file of only metadata and a file of only an empty tensor are fine.
  write_raw(p, st_file(R"({"__metadata__":{"a":"b"}})", {}));
  EXPECT_EQ(read_safetensors(p).metadata.at("a"), "b");
  write_raw(p, st_file(R"({"e":{"dtype":"I64","shape":[0],"data_offsets":[0,0]}})", {}));
  EXPECT_EQ(read_safetensors(p).tensors.at("e").numel(), 0);
}

// Runs `python script args...`; returns its exit status and output.
std::pair<int, std::string> run_python(const std::string& python, const std::string& args) {
  std::FILE* p = ::popen((python + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  return {status, out};
}

// A reader of the format written from the spec with json + struct only, checking the points
// every reader relies on; when the safetensors package is installed it reads the file too.
const char* kPythonReader = R"PY(
import json, struct, sys
path, expected_path = sys.argv[1], sys.argv[2]
data = open(path, 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
assert (8 + n) % 8 == 0, 'data buffer not 8-aligned'
assert data[8:9] == b'{', 'header does not start with {'
header = json.loads(data[8:8 + n].decode('utf-8'))
buf = data[8 + n:]
meta = header.pop('__metadata__', {})
fmt = {'F32': 'f', 'F64': 'd', 'I64': 'q', 'I32': 'i', 'U8': 'B'}
size = {'F32': 4, 'F64': 8, 'I64': 8, 'I32': 4, 'U8': 1}
pos = 0
for b, e in sorted(tuple(v['data_offsets']) for v in header.values()):
    assert b == pos, 'hole or overlap at %d' % b
    pos = e
assert pos == len(buf), 'buffer not fully covered'
got = {}
for name, v in header.items():
    b, e = v['data_offsets']
    count = 1
    for d in v['shape']:
        count *= d
    assert e - b == count * size[v['dtype']], name
    assert b % size[v['dtype']] == 0, name + ' misaligned'
    got[name] = {'dtype': v['dtype'], 'shape': v['shape'],
                 'values': list(struct.unpack('<%d%s' % (count, fmt[v['dtype']]), buf[b:e]))}
expected = json.load(open(expected_path))
assert meta == expected['metadata'], (meta, expected['metadata'])
assert got == expected['tensors'], (got, expected['tensors'])
try:
    from safetensors.numpy import load_file
except ImportError:
    print('OK (json+struct reader; safetensors package not installed)')
else:
    loaded = load_file(path)
    for name, t in expected['tensors'].items():
        assert list(loaded[name].shape) == t['shape'], name
        assert loaded[name].flatten().tolist() == t['values'], name
    print('OK (json+struct reader and safetensors package)')
)PY";

// A writer from the spec: no padding, data in an order that leaves tensors unaligned, a header
// with spaces; the reader must accept all of that.
const char* kPythonWriter = R"PY(
import json, struct, sys
tensors = [('bytes', 'U8', [3], struct.pack('<3B', 1, 2, 250)),
           ('w', 'F32', [2, 2], struct.pack('<4f', 1.5, -2.0, 0.25, 3.0)),
           ('n', 'I64', [], struct.pack('<q', -5)),
           ('v', 'F64', [1], struct.pack('<d', 0.1)),
           ('i', 'I32', [2], struct.pack('<2i', -7, 2147483647))]
header, offset, blob = {'__metadata__': {'source': 'python'}}, 0, b''
for name, dtype, shape, raw in tensors:
    header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(raw)]}
    offset += len(raw)
    blob += raw
text = json.dumps(header, indent=1).encode('utf-8')
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(text)) + text + blob)
)PY";

TEST(SafeTensors, PythonReadsWhatWeWrite) {
  const std::string python = find_python();
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  TempDir dir;
  const auto tensors = sample_tensors();
  write_safetensors(dir / "g.safetensors", tensors, kMeta);
  nlohmann::json expected;
  expected["metadata"] = kMeta;
  expected["tensors"] = nlohmann::json::object();
  for (const auto& [name, t] : tensors) {
    nlohmann::json values = nlohmann::json::array();
    if (t.dtype == "F32")
      for (float v : tensor_values<float>(t, name)) values.push_back(double(v));
    if (t.dtype == "F64")
      for (double v : tensor_values<double>(t, name)) values.push_back(v);
    if (t.dtype == "I64")
      for (int64_t v : tensor_values<int64_t>(t, name)) values.push_back(v);
    if (t.dtype == "I32")
      for (int32_t v : tensor_values<int32_t>(t, name)) values.push_back(v);
    if (t.dtype == "U8")
      for (uint8_t v : tensor_values<uint8_t>(t, name)) values.push_back(int(v));
    expected["tensors"][name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"values", values}};
  }
  std::ofstream(dir / "expected.json") << expected.dump();
  std::ofstream(dir / "reader.py") << kPythonReader;
  const auto [status, out] =
      run_python(python, dir / "reader.py" + " " + dir / "g.safetensors" + " " + dir / "expected.json");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("OK"), std::string::npos) << out;
  std::printf("python: %s", out.c_str());
}

TEST(SafeTensors, WeReadWhatPythonWrites) {
  const std::string python = find_python();
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  TempDir dir;
  std::ofstream(dir / "writer.py") << kPythonWriter;
  const auto [status, out] = run_python(python, dir / "writer.py" + " " + dir / "p.safetensors");
  ASSERT_EQ(status, 0) << out;
  const SafeTensors st = read_safetensors(dir / "p.safetensors");
  EXPECT_EQ(st.metadata.at("source"), "python");
  EXPECT_EQ(tensor_values<uint8_t>(st.tensors.at("bytes"), "bytes"), (std::vector<uint8_t>{1, 2, 250}));
  EXPECT_EQ(tensor_values<float>(st.tensors.at("w"), "w"), (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f}));
  EXPECT_EQ(st.tensors.at("w").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(tensor_values<int64_t>(st.tensors.at("n"), "n"), std::vector<int64_t>{-5});
  EXPECT_TRUE(st.tensors.at("n").shape.empty());
  EXPECT_EQ(tensor_values<double>(st.tensors.at("v"), "v"), std::vector<double>{0.1});
  EXPECT_EQ(tensor_values<int32_t>(st.tensors.at("i"), "i"), (std::vector<int32_t>{-7, 2147483647}));
}

}  // namespace
}  // namespace gancu
