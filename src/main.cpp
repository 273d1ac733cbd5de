// gancu: train, sample, evaluate and benchmark GANs on the CPU or on NVIDIA GPUs.
//
// Exit codes: 0 success; 1 runtime error (bad or missing data, I/O, device, divergence);
// 2 usage or config error (unknown flag, impossible value, unknown preset).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "gancu/check.h"

int main(int argc, char** argv) {
  CLI::App app{"gancu " GANCU_VERSION ": GAN trainer in CUDA C++ with a CPU reference backend"};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", "gancu " GANCU_VERSION);
  gancu::cli::add_train(app);
  gancu::cli::add_sample(app);
  gancu::cli::add_bench(app);
  gancu::cli::add_eval(app);
  gancu::cli::add_compare(app);
  gancu::cli::add_classifier(app);
  gancu::cli::add_info(app);
  gancu::cli::add_plot(app);
  gancu::cli::add_video(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's action
    return 0;
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message naming the flag
    return 2;
  } catch (const gancu::UsageError& e) {
    std::fprintf(stderr, "gancu: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gancu: error: %s\n", e.what());
    return 1;
  }
}
