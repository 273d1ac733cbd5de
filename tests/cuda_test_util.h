// The one way a CUDA test skips itself: where no CUDA device can be used, the test is skipped
// with the reason, unless GANCU_REQUIRE_CUDA is set (the emulated build in CI, a GPU machine),
// where the same condition is a failure, so that a skip can never stand in for a pass.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "gancu/exec.h"

#if GANCU_CUDA_EMULATION
#include <cudnn.h>  // the emulator's stand-in (simtCudnnWithholdAlgorithms)
#endif

namespace gancu::test {
inline bool cuda_required() {
  const char* v = std::getenv("GANCU_REQUIRE_CUDA");
  return v && *v && std::string(v) != "0";
}

#if GANCU_CUDA_EMULATION
// Makes the emulator's cuDNN report no algorithm for some passes (bits: 1 forward, 2
// backward-data, 4 backward-filter) while in scope.
struct WithheldAlgorithms {
  explicit WithheldAlgorithms(int passes) { simtCudnnWithholdAlgorithms(passes); }
  ~WithheldAlgorithms() { simtCudnnWithholdAlgorithms(0); }
  WithheldAlgorithms(const WithheldAlgorithms&) = delete;
  WithheldAlgorithms& operator=(const WithheldAlgorithms&) = delete;
};
#endif
}  // namespace gancu::test

#define GANCU_SKIP_WITHOUT_CUDA()                                                                    \
  do {                                                                                               \
    std::string gancu_why_;                                                                          \
    if (!::gancu::cuda_available(&gancu_why_)) {                                                     \
      if (::gancu::test::cuda_required()) FAIL() << "GANCU_REQUIRE_CUDA is set, but " << gancu_why_; \
      GTEST_SKIP() << gancu_why_;                                                                    \
    }                                                                                                \
  } while (0)
