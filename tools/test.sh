#!/usr/bin/env bash
# Sets everything up on a fresh machine (Debian packages), builds gancu with its tests, and runs
# every test: the GoogleTest suite through ctest (GPU cases skip themselves where no GPU is
# present, and say why), the self-checks of the PyTorch peer scripts, and the checking build: the
# suite again under ASan + UBSan with the CUDA tests on the SIMT emulator (where they must run:
# tools/test_sanitized.sh, tools/test_emulated.sh) and the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build=${GANCU_BUILD_DIR:-build}
# TensorBoard's own reader for the event-file test (from PyPI; the test skips itself without it).
tools/setup_tensorboard.sh || echo "test: tensorboard could not be installed; its cross-check will be skipped"
# pytorch-fid's network code (PyPI, no weights) for the check of gancu's Inception-v3 against it.
tools/setup_pytorch_fid.sh
# Several test processes share the cores: threads that wait should sleep, not spin.
export OMP_WAIT_POLICY=passive
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
/usr/bin/python3 tools/test_tools.py
# The checking build (build-asan, clang, ASan + UBSan): the CPU suite again, the CUDA tests on the
# SIMT emulator (kernels/ built against tests/simt/, where they must run), and the fuzzers
# (corpus replay, then briefly each): docs/testing.md, docs/reliability.md.
t0=$SECONDS
tools/test_sanitized.sh
echo "test: checking build and its suites: $((SECONDS - t0)) s"
echo "all tests passed"
