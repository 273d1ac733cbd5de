// safetensors reading and writing. See include/gancu/safetensors.h for the format.
#include "gancu/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gancu/fileutil.h"

namespace gancu {

// The format is little-endian; so is every machine gancu runs on (x86-64, aarch64). Copying
// bytes straight in and out relies on that.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

// The reference implementation refuses larger headers, so files beyond it are not safetensors
// files anyone else can read, and the limit keeps a corrupt length from allocating gigabytes.
constexpr uint64_t kMaxHeader = uint64_t(100) << 20;

const char* const kSupported = "F32, F64, I64, I32, U8";

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

// numel * element size, or -1 when a dim is negative or the product overflows.
int64_t byte_size(const std::vector<int64_t>& shape, size_t element) {
  uint64_t n = element;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > (uint64_t(INT64_MAX) / uint64_t(d))) return -1;
    n *= uint64_t(d);
  }
  return static_cast<int64_t>(n);
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "U8") return 1;
  return 0;
}

std::vector<uint8_t> serialize_safetensors(const std::map<std::string, TensorData>& tensors,
                                           const std::map<std::string, std::string>& metadata,
                                           const std::string& path) {
  // Largest elements first, then by name: with the buffer starting at a multiple of 8, every
  // tensor then starts at a multiple of its own element size.
  std::vector<const std::pair<const std::string, TensorData>*> order;
  for (const auto& entry : tensors) {
    const TensorData& t = entry.second;
    if (entry.first == "__metadata__")
      runtime_error(path, ": '__metadata__' is reserved and cannot be a tensor name");
    const size_t element = safetensors_dtype_size(t.dtype);
    if (element == 0)
      runtime_error(path, ": tensor '", entry.first, "': unsupported dtype '", t.dtype, "' (", kSupported,
                    ")");
    const int64_t need = byte_size(t.shape, element);
    if (need < 0 || uint64_t(need) != t.bytes.size())
      runtime_error(path, ": tensor '", entry.first, "': ", t.bytes.size(), " bytes do not match shape ",
                    shape_text(t.shape), " of ", t.dtype);
    order.push_back(&entry);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return safetensors_dtype_size(a->second.dtype) > safetensors_dtype_size(b->second.dtype);
  });

  json header = json::object();
  uint64_t offset = 0;
  for (const auto* entry : order) {
    const TensorData& t = entry->second;
    json info = json::object();
    info["dtype"] = t.dtype;
    info["shape"] = t.shape;
    info["data_offsets"] = json::array({offset, offset + t.bytes.size()});
    header[entry->first] = std::move(info);
    offset += t.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string text;
  try {
    text = header.dump();  // strict UTF-8: a name that is not valid UTF-8 throws
  } catch (const json::exception& e) {
    runtime_error(path, ": cannot write the header: ", e.what());
  }
  // Spaces are JSON whitespace, so padding keeps the header valid; 8 + N becomes a multiple of 8.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const auto* entry : order)
    out.insert(out.end(), entry->second.bytes.begin(), entry->second.bytes.end());
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  atomic_write(path, serialize_safetensors(tensors, metadata, path));
}

SafeTensors parse_safetensors(const std::vector<uint8_t>& file, const std::string& path) {
  if (file.size() < 8)
    runtime_error(path, ": not a safetensors file: ", file.size(),
                  " bytes, shorter than the 8-byte header length that starts the format");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(file[i]) << (8 * i);
  if (n > file.size() - 8)
    runtime_error(path, ": header length ", n, " reaches beyond the end of the file (", file.size(),
                  " bytes): truncated, or not a safetensors file");
  if (n > kMaxHeader)
    runtime_error(path, ": header length ", n, " is larger than the 100 MiB safetensors allows");
  if (n < 2 || file[8] != '{')
    runtime_error(path, ": not a safetensors file: the header is not a JSON object");

  // Duplicate names are forbidden by the format, but nlohmann keeps the last silently: watch
  // the keys of the top-level object while parsing.
  std::set<std::string> names;
  std::string duplicate;
  json header;
  try {
    const char* begin = reinterpret_cast<const char*>(file.data() + 8);
    header = json::parse(begin, begin + n, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {
    runtime_error(path, ": header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) runtime_error(path, ": header is not a JSON object");
  if (!duplicate.empty()) runtime_error(path, ": header names '", duplicate, "' twice");

  const uint64_t buffer_size = file.size() - 8 - n;
  const uint8_t* buffer = file.data() + 8 + n;
  SafeTensors out;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) runtime_error(path, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) runtime_error(path, ": __metadata__ value of '", key, "' is not a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!info.is_object()) runtime_error(where, ": entry is not a JSON object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) runtime_error(where, ": no dtype string");
    if (!info.contains("shape") || !info["shape"].is_array()) runtime_error(where, ": no shape array");
    if (!info.contains("data_offsets") || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2)
      runtime_error(where, ": no data_offsets [begin, end]");
    TensorData t;
    t.dtype = info["dtype"].get<std::string>();
    const size_t element = safetensors_dtype_size(t.dtype);
    if (element == 0)
      runtime_error(where, ": unknown or unsupported dtype '", t.dtype, "' (gancu reads ", kSupported, ")");
    for (const json& d : info["shape"]) {
      if (!d.is_number_integer() ||
          (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
        runtime_error(where, ": shape ", info["shape"].dump(), " is not a list of non-negative integers");
      if (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX))
        runtime_error(where, ": shape ", info["shape"].dump(), " has a dimension too large");
      t.shape.push_back(d.get<int64_t>());
    }
    const json& offsets = info["data_offsets"];
    for (const json& o : offsets)
      if (!o.is_number_unsigned())
        runtime_error(where, ": data_offsets ", offsets.dump(), " are not two non-negative integers");
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > buffer_size)
      runtime_error(where, ": data_offsets [", begin, ", ", end, "] are out of range (the data buffer holds ",
                    buffer_size, " bytes)");
    const int64_t need = byte_size(t.shape, element);
    if (need < 0 || uint64_t(need) != end - begin)
      runtime_error(where, ": data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes but shape ",
                    shape_text(t.shape), " of ", t.dtype, " needs ",
                    need < 0 ? std::string("more than 2^63") : std::to_string(need));
    t.bytes.assign(buffer + begin, buffer + end);
    ranges.push_back({begin, end, name});
    out.tensors.emplace(name, std::move(t));
  }

  // The tensors must tile the buffer: no overlaps (two names for the same bytes) and no holes or
  // trailing bytes (data nobody can reach, usually a sign of a broken writer).
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Range* previous = nullptr;
  for (const Range& r : ranges) {
    if (r.begin < covered)
      runtime_error(path, ": tensors '", previous->name, "' and '", r.name, "' overlap (bytes ", r.begin,
                    "..", std::min(covered, r.end), " of the data)");
    if (r.begin > covered)
      runtime_error(path, ": bytes ", covered, "..", r.begin,
                    " of the data belong to no tensor (a hole before '", r.name, "')");
    covered = r.end;
    previous = &r;
  }
  if (covered != buffer_size)
    runtime_error(path, ": the data buffer holds ", buffer_size, " bytes but the tensors cover ", covered,
                  " (", buffer_size - covered, " bytes after the last tensor belong to no tensor)");
  return out;
}

SafeTensors read_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

}  // namespace gancu
