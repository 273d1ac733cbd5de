// How a benchmark case reports that it could not give a number, so that the binary's exit status
// says so (bench_main.cpp): Google Benchmark's SkipWithError alone marks the case and still exits 0.
//   check_failed:  the result the case would time is wrong (against the CPU backend or a direct
//                  reference): always a failure.
//   no_device:     a CUDA case without a usable GPU: a failure only under GANCU_REQUIRE_CUDA=1
//                  (tools/gpu_check.sh sets it), so that a GPU run cannot pass by skipping.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

namespace gancu::bench {

// The result check itself: err within bound (NaN is not). GANCU_BENCH_FAIL_CHECKS=1 makes every
// check fail, so that a test can see the exit status without a broken kernel.
bool within(double err, double bound);
void check_failed(benchmark::State& state, const std::string& why);
void no_device(benchmark::State& state, const std::string& why);
// Cases that failed so far (bench_main.cpp's exit status).
int failures();

}  // namespace gancu::bench
