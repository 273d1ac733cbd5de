#include <omp.h>
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/comm.h"
#include "gancu/exec.h"

extern "C" char* openblas_get_config(void);

namespace gancu::cli {

void add_info(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Version, backends and devices");
  cmd->callback([] {
    // In a job (mpirun, srun): where each rank runs; rank 0 prints them all.
    Communicator& comm = world();
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    std::string device = "cpu";
    if (cuda_available())
      device = "cuda:" + std::to_string(comm.local_rank()) + " (when --backend cuda or auto)";
    const std::vector<std::string> ranks = comm.gather_strings(
        detail::concat("  rank ", comm.rank(), ": host ", host, ", local rank ", comm.local_rank(), " of ",
                       comm.local_size(), ", device ", device, "\n"),
        "gancu info's rank list");
    if (comm.rank() != 0) return;
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
    std::cout << list << "\n"
              << "data parallel: " << comm.describe()
              << (comm.size() > 1 ? "" : " (mpirun -np N gancu train ... runs N ranks)") << "\n";
    if (comm.size() > 1)
      for (const std::string& line : ranks) std::cout << line;
  });
}

}  // namespace gancu::cli
