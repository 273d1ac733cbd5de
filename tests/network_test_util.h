// Binding a test network to an arena of its own on the CPU (the plan, the arena, the workspace,
// the buffers, the initial parameters), as the Gan does for its networks.
#pragma once

#include "gancu/arena.h"
#include "gancu/network.h"

namespace gancu::test {

template <class T>
Arena bind_on_cpu(Network<T>& net, Exec& ex, uint64_t seed) {
  ArenaPlan plan;
  net.plan(plan, ex);
  Arena arena(Backend::CPU, std::move(plan));
  ex.set_workspace(arena.workspace(), arena.workspace_bytes());
  net.bind(arena);
  net.initialize(ex, seed);
  return arena;
}

}  // namespace gancu::test
