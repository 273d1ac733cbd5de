// The subcommands of `gancu`. Each registers its flags and its action (a CLI11 callback, run by
// app.parse when that subcommand was chosen). Actions throw UsageError (exit 2) or RuntimeError
// (exit 1); see main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "gancu/config.h"
#include "gancu/exec.h"

namespace gancu::cli {

void add_train(CLI::App& app);
void add_sample(CLI::App& app);
void add_bench(CLI::App& app);
void add_info(CLI::App& app);
void add_classifier(CLI::App& app);
void add_eval(CLI::App& app);
void add_compare(CLI::App& app);
void add_plot(CLI::App& app);
void add_video(CLI::App& app);

// The flags that train and bench share, and how they become config overrides.
struct ModelFlags {
  std::string preset, config, data, backend, steps, batch, seed, threads;
  std::vector<std::string> sets;
  bool strict = false;  // --strict: data.strict

  void add_to(CLI::App& cmd, bool with_data);
  // --set key=value and the flags that were given, in a fixed order (flags first).
  std::vector<ConfigOverride> overrides() const;
};

// --backend and --threads of the commands that run trained networks (sample, eval, compare,
// classifier): the same help, the same checks, the backend opened (and named on stderr) one way.
struct BackendFlags {
  std::string backend = "auto";
  int threads = 0;

  void add_to(CLI::App& cmd);
  Exec open() const;  // a UsageError for --threads below 0 or an unknown backend
};

}  // namespace gancu::cli
