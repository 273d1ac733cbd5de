#!/usr/bin/env bash
# The checking build: gancu's CPU test suite and its CUDA tests on the SIMT emulator, both under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzzers (docs/reliability.md).
# tools/test.sh (CI) calls it after the main suite.
#
#   tools/test_sanitized.sh               build, run both suites, replay the fuzz corpus, fuzz briefly
#   tools/test_sanitized.sh --build-only  only the build (for tools/fuzz.sh)
#
# Build: ${GANCU_ASAN_BUILD:-build-asan}, clang, Release with -g1, every target with
# -fsanitize=address,undefined and no recovery, the CUDA backend emulated (kernels/ on the SIMT
# emulator: nvcc takes no sanitizer flags, and no GPU is needed) with every test compiled, plus the
# libFuzzer harnesses. One build serves all three, so CI compiles the library once for them.
# Fuzzing time per harness in CI: ${GANCU_FUZZ_SECONDS:-10} s.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GANCU_ASAN_BUILD:-build-asan}
CC=clang CXX=clang++ GANCU_BUILD_DIR=$build tools/build.sh -DGANCU_CUDA=OFF -DGANCU_BENCH=OFF \
  -DGANCU_CUDA_EMULATION=ON -DGANCU_EMULATION_CUDA_TESTS_ONLY=OFF -DGANCU_SANITIZE=address,undefined -DGANCU_FUZZ=ON
[ "${1:-}" = "--build-only" ] && exit 0

# Reports fail the test that triggers them (the process aborts); leaks count (none is suppressed).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_WAIT_POLICY=passive
# What runs (docs/reliability.md#sanitizers has the times): every CPU test, except those that
# spend minutes of arithmetic on real data through code the short tests already cover:
#   GanLearning.*                    8,000 training steps (the trainer tests run the same loop)
#   *.AShortRunOnTheRing*            the minibatch layers and feature matching must learn:
#                                    1,500 steps each, whose layers and loss the finite-
#                                    difference and trainer tests run under the sanitizers
#   Classifier.ShippedClassifiers*   10,000 held-out images through the classifiers
#   Classifier.ShortTrainingRunLearns  2 epochs of classifier training
#   Evaluation.Real*, Evaluation.StackedMnist*  real-data scoring of metrics tested on constructed cases
#   ConditionalCliOnARun.EvalReports*  trains a cgan run before evaluating it, as EvalCliOnARun
#   InceptionCli.RunIsJudged*        trains a run and featurizes 7 images at 299x299 twice over; the
#                                    other Inception tests keep its code under the sanitizers
#   EvalCliOnARun.* but its first     each trains the same 40-step MNIST run again before evaluating
#                                    it with 10,000 samples; the first test (evaluation during
#                                    training) keeps the train-and-evaluate path under the sanitizers
#   the CUDA tests                   they run next, on the emulator, in three orders
#   DataParallel.*                   they run next, without leak detection (below)
exclude='^(DataParallel\.|GanLearning\.|ConditionalCliOnARun\.EvalReports|[A-Za-z]+\.AShortRunOnTheRing|Classifier\.ShippedClassifiers|Classifier\.ShortTrainingRunLearns|Evaluation\.Real|Evaluation\.StackedMnist|EvalCliOnARun\.(EvalPrints|SampledIdx|Compare)|InceptionCli\.RunIsJudged)'
cuda_tests=$(tools/test_emulated.sh --pattern)
start=$(date +%s)
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -E "$exclude|$cuda_tests"
echo "sanitized suite: $(($(date +%s) - start)) s"
# The data-parallel tests start mpirun jobs of this build's gancu: ASan and UBSan check every rank,
# but not for leaks, since Open MPI's own components (loaded with dlopen, unloaded at MPI_Finalize)
# leave allocations that no suppression can name.
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0" \
  ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -R "^DataParallel[.]"
# The CUDA tests on the emulator, sanitized: ASan follows the emulator's fiber stacks.
tools/test_emulated.sh "$build"
export GANCU_FUZZ_BUILD=$build  # the fuzzers of this build, whatever its folder's name
tools/fuzz.sh --replay
tools/fuzz.sh "${GANCU_FUZZ_SECONDS:-10}"
echo "sanitized suite and fuzzers passed"
