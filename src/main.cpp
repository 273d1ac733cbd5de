// gancu: train, sample, evaluate and benchmark GANs on the CPU or on NVIDIA GPUs.
//
// Exit codes: 0 success; 1 runtime error (bad or missing data, I/O, device, divergence);
// 2 usage or config error (unknown flag, impossible value, unknown preset).
//
// Under mpirun or srun each process is one rank of a data-parallel job (gancu/comm.h): an error on
// any rank prints the rank and the cause, then ends every rank of the job (never a hang).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/commands.h"
#include "gancu/blas_kernel.h"
#include "gancu/check.h"
#include "gancu/comm.h"

namespace {

// Prints the error (naming the rank in a job of several) and ends: the process, or the whole job.
int fail(int code, const char* message) {
  std::fprintf(stderr, "gancu: %serror: %s\n", gancu::rank_prefix().c_str(), message);
  if (gancu::world().size() > 1) gancu::world().abort(code);
  return code;
}

// The subcommands that run as ranks of one job; the others would each do the whole work and write
// the same files.
void refuse_other_commands_in_a_job(int argc, char** argv) {
  if (gancu::world().size() <= 1 || argc < 2) return;
  for (const char* allowed : {"train", "bench", "info"})
    if (std::strcmp(argv[1], allowed) == 0) return;
  if (argv[1][0] == '-') return;  // --help, --version
  gancu::usage_error("gancu ", argv[1],
                     " runs in one process; under mpirun or srun only train, bench and info run "
                     "(as ranks of one job)");
}

}  // namespace

int main(int argc, char** argv) {
  gancu::use_faster_blas_kernel(argv);  // before MPI and threads: it may replace the process
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
  std::unique_ptr<gancu::WorldScope> job;  // MPI, when started by mpirun or srun
  try {
    job = std::make_unique<gancu::WorldScope>();
    refuse_other_commands_in_a_job(argc, argv);
    app.parse(argc, argv);  // runs the chosen subcommand's action
    return 0;
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message naming the flag
    if (gancu::world().size() > 1) gancu::world().abort(2);
    return 2;
  } catch (const gancu::UsageError& e) {
    return fail(2, e.what());
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}
