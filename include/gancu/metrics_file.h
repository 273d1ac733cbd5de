// A run's metrics.jsonl, as the trainer writes it and as --resume reads it back.
//
// One JSON object per log step, one line each. A process killed inside a write can leave a torn
// last line; every reader skips it (read_metrics_log in plot.h, metrics_kept_on_resume here).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace gancu {

// Appends whole lines: a line that cannot be written completely (a full disk) is cut off again
// and the RuntimeError names the file and the reason, so the file always ends on a whole line.
class MetricsFile {
 public:
  explicit MetricsFile(std::string path);
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;

  void append(const std::string& line);  // `line` ends with '\n'

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  long good_size_ = 0;
};

// The lines of a metrics.jsonl text that a run resumed at `step` keeps: those of steps up to
// `step` (the resumed run writes the later ones again). Blank lines, lines that are not JSON
// objects with an integer "step" (a torn last line) are dropped.
std::string metrics_kept_on_resume(const std::string& text, int64_t step);

// Rewrites the file at `path` (atomically) to metrics_kept_on_resume; a missing file is fine.
void truncate_metrics(const std::string& path, int64_t step);

}  // namespace gancu
