#!/usr/bin/env bash
# Installs every Debian package that gancu's build, tests, benchmarks and demo need (clang and its
# runtime libraries: the sanitized build and the fuzzers; util-linux: unshare for the full-disk
# test; procps: pgrep for the data-parallel test that kills a rank; Open MPI: mpirun).
# Idempotent: packages already present are not reinstalled, and apt's index is refreshed only
# when something is missing. Runs as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libopenblas-openmp-dev libomp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtoml11-dev nlohmann-json3-dev
  libpng-dev libjpeg-dev zlib1g-dev libopenmpi-dev openmpi-bin
  libgif-dev libboost-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-torch python3-torchvision python3-pil python3-pip
  clang libclang-rt-14-dev util-linux procps
)
# Optional extras: a missing one only disables the feature that uses it.
# ffmpeg: the run's MP4 (else a GIF); gnuplot-nox: `gancu plot`; python3-venv: the environment
# tools/setup_tensorboard.sh makes for the TensorBoard cross-check.
optional=(ffmpeg gnuplot-nox python3-venv python3-matplotlib clang-format)

missing=()
for p in "${packages[@]}" "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
