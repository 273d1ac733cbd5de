// The exception of a GANCU_CHECK that failed (check.h): a bug in gancu, not in its input.
//
// It is a RuntimeError, so the command line reports it like any other (exit 1); the fuzzers
// (fuzz/fuzz_util.h) catch it apart, since bad input must never reach an internal check. Its
// own header, so that check.h, which every file includes, stays as it is.
#pragma once

#include "gancu/check.h"

namespace gancu {

struct InternalError : RuntimeError {
  using RuntimeError::RuntimeError;
};

}  // namespace gancu
