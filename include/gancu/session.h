// What train, sample and bench share: choosing the backend, and a Gan planned into its arena on
// that backend.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "gancu/arena.h"
#include "gancu/config.h"
#include "gancu/exec.h"
#include "gancu/gan.h"

namespace gancu {

// "auto" picks CUDA where a usable GPU is present and the CPU otherwise; either way one line on
// `log` says which and why. "cuda" without a GPU is a RuntimeError.
Exec open_backend(const std::string& requested, int threads, const std::string& math, std::ostream& log);

// A Gan with its arena, bound and ready (parameters not yet initialized).
struct GanSession {
  std::unique_ptr<Gan> gan;
  Arena arena;
};
GanSession make_session(const Config& cfg, Shape image, int batch, Exec& ex);

}  // namespace gancu
