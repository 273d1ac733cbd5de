// `--set KEY=VALUE` as the command line passes it (split at the first '='), on top of a preset:
// any key, any value text (a TOML literal or a bare string). Seeds: tests/fuzz/corpus/set.
#include <string>

#include "fuzz_util.h"
#include "gancu/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t eq = text.find('=');
  if (eq == std::string::npos) return 0;  // the command line refuses it before the config sees it
  const gancu::ConfigOverride set{text.substr(0, eq), text.substr(eq + 1), "--set " + text.substr(0, eq)};
  gancu::fuzz::expect_clean([&] {
    const gancu::Config cfg = gancu::load_config("mlp", "", {set});
    const gancu::Config again = gancu::load_config_text(cfg.toml, "resolved");
    if (!gancu::config_changes(cfg, again).empty()) std::abort();
  });
  return 0;
}
