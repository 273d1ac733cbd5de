#!/usr/bin/env bash
# The CUDA tests on the SIMT emulator (a build configured with -DGANCU_CUDA_EMULATION=ON, see
# docs/testing.md): every kernel of kernels/ runs on the CPU. The full CUDA suite runs in forward
# scheduling order, then a quick pass (GANCU_TEST_QUICK: the first shapes of each op test) in
# reverse and in shuffled order, since a missing barrier often shows in one order only.
# GANCU_REQUIRE_CUDA=1 makes a CUDA test that would skip fail instead.
#   tools/test_emulated.sh [build folder (build-emu)] [extra ctest arguments...]
#   tools/test_emulated.sh --pattern      prints the regex of the CUDA tests (for other scripts)
# CI runs it on build-asan (tools/test_sanitized.sh), where the emulated kernels also run under
# ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
all='^(Simt[A-Za-z]*|CudaOps|CudaLabelOps|CudaTraining|ObjectiveStepCuda)\.|^Evaluation\.(CpuAndCudaAgree|InceptionFeaturesAgreeOnCpuAndCuda)$'
if [ "${1:-}" = "--pattern" ]; then
  echo "$all"
  exit 0
fi
build=${1:-build-emu}
shift || true
export GANCU_REQUIRE_CUDA=1 OMP_WAIT_POLICY=passive
quick='^(Simt[A-Za-z]*|CudaOps|CudaLabelOps)\.'
run() {
  local order=$1 pattern=$2
  shift 2
  local t0=$SECONDS
  GANCU_SIMT_ORDER=$order ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)" -R "$pattern" "$@"
  echo "test_emulated: order $order: $((SECONDS - t0)) s"
}
run forward "$all" "$@"
GANCU_TEST_QUICK=1 run reverse "$quick" "$@"
GANCU_TEST_QUICK=1 run shuffle:1 "$quick" "$@"
