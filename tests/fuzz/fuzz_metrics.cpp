// metrics.jsonl as --resume keeps it (metrics_kept_on_resume) and as `gancu plot` reads it
// (read_metrics_log). The first 8 bytes are the resume step. Seeds: tests/fuzz/corpus/metrics.
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "gancu/metrics_file.h"
#include "gancu/plot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  int64_t step;
  std::memcpy(&step, data, 8);
  const std::string text(reinterpret_cast<const char*>(data) + 8, size - 8);
  gancu::fuzz::expect_clean([&] {
    const std::string kept = gancu::metrics_kept_on_resume(text, step);
    // What resume keeps is whole lines, and keeping it again changes nothing.
    if (!kept.empty() && kept.back() != '\n') std::abort();
    if (gancu::metrics_kept_on_resume(kept, step) != kept) std::abort();
  });
  const gancu::fuzz::MemFile file(data + 8, size - 8);
  gancu::fuzz::expect_clean([&] { gancu::read_metrics_log(file.path()); });
  return 0;
}
