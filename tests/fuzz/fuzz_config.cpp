// A --config file (TOML) resolved on top of the defaults, as `gancu train --config` and --resume
// (the run's config.toml, a checkpoint's metadata) read it; then the networks it describes are
// built from their layer strings, as the trainer does before planning memory. Seeds:
// tests/fuzz/corpus/config (the presets among them).
#include <string>

#include "fuzz_util.h"
#include "gancu/config.h"
#include "gancu/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  gancu::fuzz::expect_clean([&] {
    const gancu::Config cfg = gancu::load_config_text(text, "fuzz.toml");
    // The round trip: the resolved config is itself a valid config with the same values.
    const gancu::Config again = gancu::load_config_text(cfg.toml, "fuzz.toml (resolved)");
    if (!gancu::config_changes(cfg, again).empty()) std::abort();
    gancu::generator_image(cfg);
  });
  return 0;
}
