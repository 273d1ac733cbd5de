// The one way a CUDA test skips itself: where no CUDA device can be used, the test is skipped
// with the reason, unless GANCU_REQUIRE_CUDA is set (the emulated build in CI, a GPU machine),
// where the same condition is a failure, so that a skip can never stand in for a pass.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gancu/exec.h"
#include "gancu/memory.h"

#if GANCU_CUDA_EMULATION
#include <cudnn.h>  // the emulator's stand-in (simtCudnnWithholdAlgorithms)
#endif

namespace gancu::test {

// Uniform floats in [lo, hi) from a fixed seed: the inputs of the CUDA-against-CPU tests.
inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// ||gpu - cpu|| / ||cpu|| (||gpu - cpu|| when cpu is zero); -1 when gpu holds a NaN or inf (an
// element the kernel did not write, when the output was poisoned with NaN).
inline double rel_error(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!std::isfinite(gpu[i])) return -1.0;
    const double d = double(gpu[i]) - double(cpu[i]);
    num += d * d;
    den += double(cpu[i]) * double(cpu[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

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

namespace gancu::test {

// The fixture of the CUDA-against-CPU tests: a CUDA executor (the test skips itself, or fails
// under GANCU_REQUIRE_CUDA, where none can be used) beside a CPU executor for the twins, and the
// uploads every such test makes.
class CudaAgainstCpu : public ::testing::Test {
 protected:
  // cpu_threads: the CPU twin's threads (0: OpenMP's default).
  explicit CudaAgainstCpu(int cpu_threads = 0) : cpu_(Exec::cpu(cpu_threads)) {}
  void SetUp() override {
    GANCU_SKIP_WITHOUT_CUDA();
    gpu_ = Exec::cuda(0);
  }
  Buffer<float> up(const std::vector<float>& v) { return Buffer<float>(gpu_, v); }
  // An output buffer full of NaN: an element the kernel fails to write stays NaN and fails the
  // comparison (rel_error returns -1).
  Buffer<float> poisoned(size_t n) {
    return Buffer<float>(gpu_, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
  }

  Exec cpu_;
  Exec gpu_;
};

}  // namespace gancu::test
