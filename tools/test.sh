#!/usr/bin/env bash
# Sets everything up on a fresh machine (Debian packages), builds gancu with its tests, and runs
# every test: the GoogleTest suite through ctest (GPU cases skip themselves where no GPU is
# present, and say why), the CUDA tests again on the SIMT emulator (a second build, build-emu,
# where they must run: tools/test_emulated.sh), and the self-checks of the PyTorch peer scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build=${GANCU_BUILD_DIR:-build}
# TensorBoard's own reader for the event-file test (from PyPI; the test skips itself without it).
tools/setup_tensorboard.sh || echo "test: tensorboard could not be installed; its cross-check will be skipped"
# Several test processes share the cores: threads that wait should sleep, not spin.
export OMP_WAIT_POLICY=passive
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
# The CUDA backend on the CPU: kernels/ built against the SIMT emulator (tests/simt/).
emu=${GANCU_EMU_BUILD_DIR:-build-emu}
t0=$SECONDS
GANCU_BUILD_DIR=$emu tools/build.sh -DGANCU_CUDA_EMULATION=ON -DGANCU_BENCH=OFF
echo "test: emulated build: $((SECONDS - t0)) s"
tools/test_emulated.sh "$emu"
/usr/bin/python3 tools/test_tools.py
# The CPU suite again under ASan + UBSan, and the fuzzers (corpus replay, then briefly each):
# docs/reliability.md.
tools/test_sanitized.sh
echo "all tests passed"
