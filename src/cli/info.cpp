#include <omp.h>

#include <iostream>

#include "commands.h"
#include "gancu/exec.h"

extern "C" char* openblas_get_config(void);

namespace gancu::cli {

void add_info(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Version, backends and devices");
  cmd->callback([] {
    std::cout
        << "gancu " << GANCU_VERSION << "\n"
        << "backends:\n"
        << "  cpu:  " << omp_get_max_threads() << " threads, OpenBLAS " << openblas_get_config() << "\n"
        << "  cuda: " << cuda_report() << "\n"
#if GANCU_CUDA_EMULATION
        << "  cuda is EMULATED: every kernel runs on the CPU in the SIMT emulator (GANCU_CUDA_EMULATION,\n"
        << "    tests/simt/; cuBLAS on OpenBLAS, cuDNN on the CPU twins), for tests, not for speed\n"
#endif
        << "presets: ";
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    std::cout << list << "\n";
  });
}

}  // namespace gancu::cli
