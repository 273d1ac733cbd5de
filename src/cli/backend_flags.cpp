#include <iostream>

#include "commands.h"
#include "gancu/check.h"
#include "gancu/session.h"

namespace gancu::cli {

void BackendFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--backend", backend, "cpu, cuda or auto (default: cuda where a GPU is present)");
  cmd.add_option("--threads", threads, "CPU threads (0: all cores)");
}

Exec BackendFlags::open() const {
  if (threads < 0) usage_error("--threads: must be at least 0, got ", threads);
  return open_backend(backend, threads, "fp32", std::cerr);
}

}  // namespace gancu::cli
