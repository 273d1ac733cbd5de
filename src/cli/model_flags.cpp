#include "commands.h"
#include "gancu/check.h"

namespace gancu::cli {

void ModelFlags::add_to(CLI::App& cmd, bool with_data) {
  cmd.add_option(
      "--preset", preset, "Built-in model and hyper-parameters: " + [] {
        std::string s;
        for (const auto& n : preset_names()) s += (s.empty() ? "" : ", ") + n;
        return s;
      }());
  cmd.add_option("--config", config, "A TOML file of settings (applied after the preset)");
  if (with_data) {
    cmd.add_option(
        "--data", data,
        "Data set: fashion-mnist, mnist, cifar10, synthetic:HxWxC, or a path (a data set's files or a "
        "folder of PNG/JPEG images)");
    cmd.add_flag("--strict", strict, "An image folder's unreadable files are an error (default: skipped)");
  }
  cmd.add_option("--backend", backend, "cpu, cuda or auto (default: cuda where a GPU is present)");
  cmd.add_option("--steps", steps, "Training iterations (each: d_steps D steps and one G step)");
  cmd.add_option("--batch", batch, "Images per batch");
  cmd.add_option("--seed", seed, "Seed of parameters, noise and data order");
  cmd.add_option("--threads", threads, "CPU threads (0: all cores)");
  cmd.add_option("--set", sets, "Override any config key: --set optim.d.lr=1e-4 (repeatable)");
}

std::vector<ConfigOverride> ModelFlags::overrides() const {
  std::vector<ConfigOverride> out;
  const auto flag = [&](const std::string& value, const char* key, const char* name) {
    if (!value.empty()) out.push_back({key, value, name});
  };
  flag(data, "data.name", "--data");
  flag(backend, "run.backend", "--backend");
  flag(steps, "train.steps", "--steps");
  flag(batch, "train.batch", "--batch");
  flag(seed, "train.seed", "--seed");
  flag(threads, "run.threads", "--threads");
  if (strict) out.push_back({"data.strict", "true", "--strict"});
  for (const std::string& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) usage_error("--set ", s, ": expected key=value");
    out.push_back({s.substr(0, eq), s.substr(eq + 1), "--set " + s.substr(0, eq)});
  }
  return out;
}

}  // namespace gancu::cli
