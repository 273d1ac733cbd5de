#!/usr/bin/env bash
# Sets everything up on a fresh machine (Debian packages), builds gancu with its tests, and runs
# every test: the GoogleTest suite through ctest (GPU cases skip themselves where no GPU is
# present, and say why) and the self-checks of the PyTorch peer scripts in tools/.
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
/usr/bin/python3 tools/test_tools.py
# The CPU suite again under ASan + UBSan, and the fuzzers (corpus replay, then briefly each):
# docs/reliability.md.
tools/test_sanitized.sh
echo "all tests passed"
