#!/usr/bin/env bash
# Configures and builds gancu (Release) in ${GANCU_BUILD_DIR:-build}. The CUDA backend is built
# whenever nvcc is found (GANCU_CUDA=AUTO); extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GANCU_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
