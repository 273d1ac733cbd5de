// The one way a CUDA test skips itself: where no CUDA device can be used, the test is skipped
// with the reason, unless GANCU_REQUIRE_CUDA is set (the emulated build in CI, a GPU machine),
// where the same condition is a failure, so that a skip can never stand in for a pass.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "gancu/exec.h"

namespace gancu::test {
inline bool cuda_required() {
  const char* v = std::getenv("GANCU_REQUIRE_CUDA");
  return v && *v && std::string(v) != "0";
}
}  // namespace gancu::test

#define GANCU_SKIP_WITHOUT_CUDA()                                                                    \
  do {                                                                                               \
    std::string gancu_why_;                                                                          \
    if (!::gancu::cuda_available(&gancu_why_)) {                                                     \
      if (::gancu::test::cuda_required()) FAIL() << "GANCU_REQUIRE_CUDA is set, but " << gancu_why_; \
      GTEST_SKIP() << gancu_why_;                                                                    \
    }                                                                                                \
  } while (0)
