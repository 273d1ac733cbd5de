// gancu_bench's main: Google Benchmark's, plus an exit status of 1 when a case failed its result
// check (or, under GANCU_REQUIRE_CUDA=1, had no GPU): bench_check.h.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench_check.h"
#include "gancu/blas_kernel.h"

namespace gancu::bench {
namespace {
std::atomic<int> g_failures{0};

bool cuda_required() {
  const char* v = std::getenv("GANCU_REQUIRE_CUDA");
  return v != nullptr && std::strcmp(v, "0") != 0 && *v != '\0';
}
}  // namespace

bool within(double err, double bound) {
  static const bool fail_all = [] {
    const char* v = std::getenv("GANCU_BENCH_FAIL_CHECKS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return !fail_all && err <= bound;
}

void check_failed(benchmark::State& state, const std::string& why) {
  ++g_failures;
  state.SkipWithError(("result check failed: " + why).c_str());
}

void no_device(benchmark::State& state, const std::string& why) {
  if (cuda_required()) ++g_failures;
  state.SkipWithError(("no CUDA device: " + why).c_str());
}

int failures() {
  return g_failures.load();
}

}  // namespace gancu::bench

int main(int argc, char** argv) {
  gancu::use_faster_blas_kernel(argv);  // the kernels a user's gancu runs
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const int failed = gancu::bench::failures();
  if (failed > 0) {
    std::fprintf(stderr,
                 "gancu_bench: %d case(s) failed their result check%s (their rows say why); no number of "
                 "theirs counts\n",
                 failed,
                 std::getenv("GANCU_REQUIRE_CUDA") ? " or found no GPU under GANCU_REQUIRE_CUDA" : "");
    return 1;
  }
  return 0;
}
