// metrics.jsonl. See include/gancu/metrics_file.h.
#include "gancu/metrics_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "gancu/check.h"
#include "gancu/fileutil.h"

namespace gancu {

MetricsFile::MetricsFile(std::string path) : path_(std::move(path)) {
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) runtime_error(path_, ": cannot open for writing: ", std::strerror(errno));
  std::fseek(file_, 0, SEEK_END);
  good_size_ = std::ftell(file_);
}

MetricsFile::~MetricsFile() {
  if (file_) std::fclose(file_);
}

void MetricsFile::append(const std::string& line) {
  GANCU_CHECK(file_, path_, ": append after a failed write");
  errno = 0;
  if (std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0) {
    good_size_ += long(line.size());
    return;
  }
  const int err = errno ? errno : EIO;
  // Drop the torn line and whatever stdio still buffers of it.
  std::fclose(file_);
  file_ = nullptr;
  const bool cut = ::truncate(path_.c_str(), good_size_) == 0;
  runtime_error(path_, ": write failed: ", std::strerror(err),
                cut ? " (the file keeps the lines written before)" : "");
}

std::string metrics_kept_on_resume(const std::string& text, int64_t step) {
  std::string kept;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) continue;  // blank, or a torn last line
    const auto it = j.find("step");
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  return kept;
}

void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  const std::vector<uint8_t> bytes = read_file(path);
  atomic_write(path, metrics_kept_on_resume(std::string(bytes.begin(), bytes.end()), step));
}

}  // namespace gancu
