#!/usr/bin/env bash
# The main job, from a fresh machine: installs what gancu needs, builds it, and trains the dcgan
# preset on Fashion-MNIST (1,500 steps at batch 64: a few minutes on the CPU, seconds on a GPU;
# the backend is chosen automatically). Prints where the sample grids are.
# Extra arguments go to `gancu train` (e.g. --steps 500, --backend cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build=${GANCU_BUILD_DIR:-build}
out=runs/demo-dcgan-$(date +%Y%m%d-%H%M%S)
"$build/gancu" train --preset dcgan --data fashion-mnist --out "$out" "$@"
echo
echo "Sample grids (one every 250 steps, fixed noise): $out/samples/"
ls "$out/samples/"
