// Between comm.cpp (world()) and the MPI communicator that WorldScope installs.
#pragma once

#include <memory>

#include "gancu/comm.h"

namespace gancu::detail {
void set_world(std::unique_ptr<Communicator> comm);
}  // namespace gancu::detail
