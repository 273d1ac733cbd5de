// The safetensors file format (Hugging Face), used for checkpoints so that PyTorch code can load
// gancu's parameters with `safetensors.torch.load_file` and vice versa.
//
// Layout: 8 bytes little-endian uint64 N, then N bytes of UTF-8 JSON header
//   {"name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data buffer: every tensor's raw little-endian, row-major bytes, where data_offsets are
// relative to the start of the buffer.
//
// The writer pads the header with spaces so that the buffer starts at a multiple of 8, and lays
// tensors out by decreasing element size, then by name, so that every tensor is aligned to its
// element size (readers can then map the file and use the data in place).
// The reader checks everything the reference implementation checks: the header length against
// the file, the JSON, each dtype, each tensor's byte size against dtype and shape, and that the
// tensors cover the buffer exactly, without overlaps or holes. A file that fails any check is a
// RuntimeError naming the file and the problem.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "gancu/check.h"

namespace gancu {

// Supported dtypes: "F32", "F64", "I64", "I32", "U8".
struct TensorData {
  std::string dtype;
  std::vector<int64_t> shape;  // [] is a scalar; a 0 dim is an empty tensor
  std::vector<uint8_t> bytes;  // numel * element size, little-endian, row-major

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct SafeTensors {
  std::map<std::string, TensorData> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object
};

// Bytes per element of a dtype name; 0 for a dtype gancu does not support.
size_t safetensors_dtype_size(const std::string& dtype);

// The dtype name of a C++ element type; other types do not compile.
template <class T>
constexpr const char* safetensors_dtype() {
  if constexpr (std::is_same_v<T, float>)
    return "F32";
  else if constexpr (std::is_same_v<T, double>)
    return "F64";
  else if constexpr (std::is_same_v<T, int64_t>)
    return "I64";
  else if constexpr (std::is_same_v<T, int32_t>)
    return "I32";
  else if constexpr (std::is_same_v<T, uint8_t>)
    return "U8";
  else
    static_assert(sizeof(T) == 0, "safetensors I/O supports float, double, int64_t, int32_t, uint8_t");
}

// A tensor of `shape` holding a copy of numel(shape) elements from `data`.
template <class T>
TensorData make_tensor(std::vector<int64_t> shape, const T* data) {
  TensorData t;
  t.dtype = safetensors_dtype<T>();
  t.shape = std::move(shape);
  t.bytes.resize(size_t(t.numel()) * sizeof(T));
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
  return t;
}

// The elements of a tensor as T; a dtype that is not T's is a RuntimeError naming `what`
// (e.g. "checkpoint.safetensors: tensor 'G.fc1.weight'").
template <class T>
std::vector<T> tensor_values(const TensorData& t, const std::string& what) {
  if (t.dtype != safetensors_dtype<T>())
    runtime_error(what, ": dtype is ", t.dtype, ", expected ", safetensors_dtype<T>());
  std::vector<T> out(t.bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), out.size() * sizeof(T));
  return out;
}

// The file's bytes; write_safetensors writes them atomically. An unsupported dtype, a byte size
// that does not match dtype and shape, or the reserved name "__metadata__" is a RuntimeError
// naming `path` and the tensor.
std::vector<uint8_t> serialize_safetensors(const std::map<std::string, TensorData>& tensors,
                                           const std::map<std::string, std::string>& metadata,
                                           const std::string& path = "safetensors");
void write_safetensors(const std::string& path, const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Parses the bytes of a safetensors file; `path` names it in error messages.
SafeTensors parse_safetensors(const std::vector<uint8_t>& file, const std::string& path);
SafeTensors read_safetensors(const std::string& path);

}  // namespace gancu
