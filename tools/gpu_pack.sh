#!/usr/bin/env bash
# Packs what the lent GPU machine lacks to build and test gancu, so that a device `run` can carry
# it (carry: [".carry"]). Runs HERE, on a machine with Debian's package registry.
#
# The GPU machine has nvcc, CMake, ninja, PyTorch, and cuDNN / cuBLAS / NCCL inside Python's
# site-packages/nvidia/* wheels, but no Debian packages and no network. This downloads the .deb
# files of the build's and tests' other dependencies into .carry/debs/ (ignored by git); they stay
# compressed (about 46 MiB: most of it the Fashion-MNIST data set and OpenBLAS, which unpack to
# about 110 MiB), and tools/gpu_check.sh unpacks them there with `dpkg -x` into a private root,
# never into /. The device tool carries at most 64 MiB with the working tree.
#
# Usage: tools/gpu_pack.sh [--no-data] [--unpack DIR]
#   --no-data     leave out dataset-fashion-mnist (31 MiB); the benchmarks then use synthetic data
#   --unpack DIR  also unpack everything into DIR (to test the configure step here)
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2

with_data=1
unpack_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-data) with_data=0 ;;
    --unpack) unpack_dir="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_pack: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

packages=(
  # BLAS of the CPU backend (the OpenMP build) and the Fortran runtime it links
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0 libgomp1
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  # header-only libraries of the CLI and config
  libcli11-dev libtoml11-dev nlohmann-json3-dev
  # images
  libpng-dev libpng16-16 zlib1g-dev zlib1g
)
[ "$with_data" = 1 ] && packages+=(dataset-fashion-mnist)

mkdir -p .carry/debs
rm -f .carry/debs/*.deb
cd .carry/debs
if ! apt-get download "${packages[@]}" >/dev/null 2>&1; then
  echo "gpu_pack: refreshing apt's package lists"
  apt-get update -qq
  apt-get download "${packages[@]}"
fi
cd ../..
printf '%s\n' "${packages[@]}" > .carry/packages.txt
# The commit the check will run on, for machines where .git does not travel (plus a mark when the
# working tree has changes).
{ git rev-parse HEAD 2>/dev/null || echo unknown; } | tr -d '\n' > .carry/commit.txt
[ -n "$(git status --porcelain 2>/dev/null)" ] && printf ' (with uncommitted changes)' >> .carry/commit.txt
echo "gpu_pack: $(ls .carry/debs | wc -l) packages, $(du -sh .carry | cut -f1) in .carry/"

if [ -n "$unpack_dir" ]; then
  mkdir -p "$unpack_dir"
  for f in .carry/debs/*.deb; do dpkg -x "$f" "$unpack_dir"; done
  echo "gpu_pack: unpacked into $unpack_dir ($(du -sh "$unpack_dir" | cut -f1))"
fi
