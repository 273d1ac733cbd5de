#include "gancu/plot.h"

#include <iostream>
#include <memory>

#include "commands.h"

namespace gancu::cli {

void add_plot(CLI::App& app) {
  struct Flags {
    std::string run, out;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw a run's metrics.jsonl as PNG charts (needs gnuplot)");
  cmd->add_option("run", f->run, "Run folder")->required();
  cmd->add_option("--out", f->out, "Output PNG (default RUN/plots/metrics.png)");
  cmd->callback([f] {
    const std::string out = plot_run(f->run, f->out);
    std::cout << "wrote " << out << "\n";
  });
}

}  // namespace gancu::cli
