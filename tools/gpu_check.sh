#!/usr/bin/env bash
# Builds gancu with CUDA on a GPU machine and runs everything that needs the GPU: the whole test
# suite, the CUDA op tests under compute-sanitizer, the op benchmarks, and (when present) the
# end-to-end benchmarks of gancu and of the PyTorch reference. Writes a summary and the logs.
#
# Made for the lent GPU machine (H100, no network, no Debian packages; nvcc, CMake, ninja and
# PyTorch, with cuDNN / cuBLAS / NCCL inside Python's site-packages/nvidia/* wheels). Before the
# run, here: tools/gpu_pack.sh (downloads the missing Debian packages into .carry/); the device
# call carries ".carry" and runs, in the repository root:
#     tools/gpu_check.sh "$OUT"
#
# Usage: tools/gpu_check.sh [OUTDIR] [STEPS]
#   OUTDIR  where summary.md, the logs archive and the key result files go ($OUT by default)
#   STEPS   comma-separated subset of: env,build,test,sanitize,bench,e2e,torch (default all).
#           All of them need more than one 600 s device command; what does not fit the budget is
#           recorded as skipped. Full coverage: two calls on a warm machine, "env,build,test,bench"
#           then "build,sanitize,e2e,torch" (the build folder persists; the second build is a no-op).
# Environment:
#   GANCU_CHECK_BUDGET   seconds for the whole script (default 560: a device command may run 600);
#                        each step is time-boxed so that the results are always written
#   GANCU_CHECK_DRY_RUN  1: set up and configure only; print the other steps' commands
#   GANCU_CHECK_CMAKE_ARGS  extra arguments for the configure step
#   GANCU_PYTHON_NVIDIA  the site-packages/nvidia folder (found through python3 otherwise)
#   GANCU_CARRY_ROOT     where the carried .debs are unpacked (default /tmp/gancu-gpu-check/carry)
#   GANCU_CARRY_ALL      1: unpack every carried package, even those the machine has (testing)
#
# Every step's failure is recorded and shown, and the script goes on to the next step; the exit
# status is 0 when every step that ran passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD

OUTDIR=${1:-${OUT:-$REPO/gpu_check_out}}
STEPS=${2:-${GANCU_CHECK_STEPS:-all}}
BUDGET=${GANCU_CHECK_BUDGET:-560}
DRY_RUN=${GANCU_CHECK_DRY_RUN:-0}
JOBS=${GANCU_CHECK_JOBS:-$(nproc)}
WORK=${GANCU_CHECK_WORK:-/tmp/gancu-gpu-check}
LOGS=$WORK/logs
CARRY_ROOT=${GANCU_CARRY_ROOT:-$WORK/carry}
BUILD=${GANCU_CHECK_BUILD:-$REPO/build-gpu}
ARCH_DIR=x86_64-linux-gnu
START=$(date +%s)
RESULTS=()

mkdir -p "$OUTDIR" "$LOGS"
rm -f "$LOGS"/*

want() { [[ ",$STEPS," == *",all,"* || ",$STEPS," == *",$1,"* ]]; }
elapsed() { echo $(( $(date +%s) - START )); }
note() { echo "gpu_check: $*" | tee -a "$LOGS/notes.log"; }

# step NAME MAX_SECONDS COMMAND...: runs the command time-boxed (never past the budget, keeping
# 25 s for packing the results), logs it to $LOGS/NAME.log and records the outcome. Never exits.
step() {
  local name=$1 max=$2
  shift 2
  local left=$(( BUDGET - $(elapsed) - 25 ))
  if (( left < 10 )); then
    RESULTS+=("$name|skipped|0|out of time budget")
    note "$name: skipped, out of the time budget"
    return 0
  fi
  (( max > left )) && max=$left
  echo "== $name (limit ${max}s): $*"
  if [ "$DRY_RUN" = 1 ]; then
    RESULTS+=("$name|dry-run|0|")
    return 0
  fi
  local t0 rc dt status
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$max" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  status=ok
  if (( rc == 124 || rc == 137 )); then status=timeout; elif (( rc != 0 )); then status=FAIL; fi
  RESULTS+=("$name|$status|$dt|rc $rc")
  echo "   -> $status (rc $rc, ${dt}s)"
  if [ "$status" != ok ]; then tail -n 15 "$LOGS/$name.log" | sed 's/^/      /'; fi
  return 0
}
skip() { RESULTS+=("$1|skipped|0|$2"); note "$1: skipped: $2"; }
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1 "; }

# ---- Carried Debian packages ----------------------------------------------------------------
# Unpacked into a private root (never into /). Runtime libraries the machine already has are not
# unpacked, so that ours never shadow newer system copies.
unpack_one() {  # deb -> $CARRY_ROOT, with dpkg-deb or, failing that, ar + tar
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$CARRY_ROOT"
  else
    local tmp member
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1") || return 1
    member=$(ls "$tmp"/data.tar.* | head -1)
    tar -xf "$member" -C "$CARRY_ROOT"
    rm -rf "$tmp"
  fi
}
unpack_carry() {
  if ! ls "$REPO"/.carry/debs/*.deb >/dev/null 2>&1; then
    note "no .carry/debs/*.deb: run tools/gpu_pack.sh on the build machine and carry .carry"
    return 1
  fi
  mkdir -p "$CARRY_ROOT"
  local deb pkg
  for deb in "$REPO"/.carry/debs/*.deb; do
    pkg=$(basename "$deb" | cut -d_ -f1)
    [ "${GANCU_CARRY_ALL:-0}" = 1 ] || case $pkg in
      libgomp1) have_lib libgomp.so.1 && continue ;;
      libgfortran5) have_lib libgfortran.so.5 && continue ;;
      libquadmath0) have_lib libquadmath.so.0 && continue ;;
      zlib1g | zlib1g-dev) [ -e /usr/include/zlib.h ] && continue ;;
      libpng16-16 | libpng-dev) [ -e /usr/include/png.h ] && continue ;;
    esac
    unpack_one "$deb" || note "could not unpack $deb"
  done
  return 0
}

# ---- cuDNN / NCCL / cuBLAS from the toolkit or Python's nvidia wheels --------------------------
find_nvidia() {
  NV=${GANCU_PYTHON_NVIDIA:-}
  if [ -z "$NV" ]; then
    NV=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
  fi
  CUDA_HOME_GUESS=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
  CUDNN_H=$(find "$CUDA_HOME_GUESS/include" /usr/include ${NV:+"$NV"} -name cudnn_version.h 2>/dev/null | head -1)
  CUDNN_LIB=$(find "$CUDA_HOME_GUESS/lib64" "$CUDA_HOME_GUESS/lib" /usr/lib/$ARCH_DIR ${NV:+"$NV"} -name 'libcudnn.so*' 2>/dev/null | sort | head -1)
  NCCL_H=$(find "$CUDA_HOME_GUESS/include" /usr/include ${NV:+"$NV"} -name nccl.h 2>/dev/null | head -1)
  NCCL_LIB=$(find "$CUDA_HOME_GUESS/lib64" "$CUDA_HOME_GUESS/lib" /usr/lib/$ARCH_DIR ${NV:+"$NV"} -name 'libnccl.so*' 2>/dev/null | sort | head -1)
  # Runtime search path: our carried libraries and every library folder of the nvidia wheels.
  local libpath="$CARRY_ROOT/usr/lib/$ARCH_DIR:$CARRY_ROOT/usr/lib/$ARCH_DIR/openblas-openmp"
  if [ -n "$NV" ] && [ -d "$NV" ]; then
    local d
    for d in $(find "$NV" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u); do libpath="$libpath:$d"; done
  fi
  # CMake's FindCUDAToolkit looks for unversioned names (libcublas.so); wheels ship only the
  # versioned ones (libcublas.so.13). Where the toolkit lacks a library, a shim folder of
  # symbolic links to the versioned files stands in (passed as CMAKE_LIBRARY_PATH).
  SHIM=$WORK/shim
  mkdir -p "$SHIM"
  local name found
  for name in cudart cublas cublasLt; do
    if ! ls "$CUDA_HOME_GUESS"/lib64/lib$name.so "$CUDA_HOME_GUESS"/lib/lib$name.so \
        "$CUDA_HOME_GUESS"/targets/x86_64-linux/lib/lib$name.so >/dev/null 2>&1; then
      found=$(find "$CUDA_HOME_GUESS" ${NV:+"$NV"} -name "lib$name.so.[0-9]*" 2>/dev/null | sort | head -1)
      if [ -n "$found" ]; then
        ln -sf "$found" "$SHIM/lib$name.so"
        note "toolkit has no lib$name.so: using $found"
      fi
    fi
  done
  export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export GANCU_PYTHON_NVIDIA="$NV"
  export GANCU_DATA_DIR=${GANCU_DATA_DIR:-$CARRY_ROOT/usr/share/datasets}
}

# The commit: from git where .git came along, else what tools/gpu_pack.sh recorded.
commit_id() {
  git -C "$REPO" rev-parse HEAD 2>/dev/null ||
    { [ -f "$REPO/.carry/commit.txt" ] && echo "$(cat "$REPO/.carry/commit.txt") (recorded by gpu_pack.sh)"; } ||
    echo unknown
}

write_environment() {
  {
    echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "commit: $(commit_id)"
    echo "working tree changes:"; git -C "$REPO" status --short 2>/dev/null | head -20
    echo "host: $(uname -a)"
    echo "cpus: $(nproc)"
    echo; echo "---- nvidia-smi"; nvidia-smi 2>&1
    echo; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    echo; echo "---- nvcc"; nvcc --version 2>&1 || echo "nvcc not on PATH"
    echo; echo "---- cmake / ninja / compute-sanitizer"
    cmake --version 2>&1 | head -1; ninja --version 2>&1; compute-sanitizer --version 2>&1 | head -2
    echo; echo "---- cuDNN: header $CUDNN_H, library $CUDNN_LIB"
    [ -n "$CUDNN_H" ] && grep -E '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$CUDNN_H"
    echo "---- NCCL: header $NCCL_H, library $NCCL_LIB"
    echo "---- python nvidia folder: $NV"; [ -n "$NV" ] && ls "$NV" 2>&1
    echo; echo "---- PyTorch"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1
    echo; echo "---- toolkit libraries"; for f in "$CUDA_HOME_GUESS"/lib64/lib{cublas,cudnn,nccl,cudart}*; do [ -e "$f" ] && echo "$f"; done
    echo; echo "---- LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "---- GANCU_DATA_DIR=$GANCU_DATA_DIR"
  } >"$LOGS/environment.txt" 2>&1
}

# ---- Steps ------------------------------------------------------------------------------------
echo "gpu_check: repository $REPO, output $OUTDIR, steps $STEPS, budget ${BUDGET}s"
unpack_carry
find_nvidia
write_environment
RESULTS+=("env|ok|$(elapsed)|$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)")

# The device's architecture (compute capability 9.0 -> 90) is the one built: a binary without it
# would run through PTX JIT at best, or not at all.
DEVICE_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
[[ "$DEVICE_ARCH" =~ ^[0-9]+$ ]] || DEVICE_ARCH=90
configure_args=(
  -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANCU_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$DEVICE_ARCH"
  "-DCMAKE_PREFIX_PATH=$CARRY_ROOT/usr"
  "-DCMAKE_LIBRARY_PATH=$SHIM"
  "-DOPENBLAS_ROOT=$CARRY_ROOT/usr/lib/$ARCH_DIR/openblas-openmp"
  "-DGANCU_OPENBLAS_LIB=$CARRY_ROOT/usr/lib/$ARCH_DIR/openblas-openmp/libopenblas.so"
  "-DGANCU_CBLAS_INCLUDE=$CARRY_ROOT/usr/include/$ARCH_DIR/openblas-openmp"
)
[ -n "$NV" ] && configure_args+=("-DGANCU_PYTHON_NVIDIA=$NV")
[ -n "$CUDNN_H" ] && configure_args+=("-DGANCU_CUDNN_INCLUDE=$(dirname "$CUDNN_H")")
[ -n "$CUDNN_LIB" ] && configure_args+=("-DGANCU_CUDNN_LIB=$CUDNN_LIB")
[ -n "$NCCL_H" ] && configure_args+=("-DGANCU_NCCL_INCLUDE=$(dirname "$NCCL_H")")
[ -n "$NCCL_LIB" ] && configure_args+=("-DGANCU_NCCL_LIB=$NCCL_LIB")
# shellcheck disable=SC2206
[ -n "${GANCU_CHECK_CMAKE_ARGS:-}" ] && configure_args+=($GANCU_CHECK_CMAKE_ARGS)

if want build; then
  # The configure step runs even in a dry run: it checks that the carried packages suffice.
  saved_dry=$DRY_RUN
  DRY_RUN=0 step configure 120 cmake "${configure_args[@]}"
  DRY_RUN=$saved_dry
  step build 330 cmake --build "$BUILD" -j "$JOBS" --target gancu gancu_tests gancu_bench
  # The build must hold code for the device's architecture (cuobjdump lists the cubins).
  if [ "$DRY_RUN" != 1 ] && [ -x "$BUILD/gancu_tests" ]; then
    if cuobjdump --list-elf "$BUILD/gancu_tests" 2>/dev/null | grep -q "sm_$DEVICE_ARCH"; then
      RESULTS+=("arch|ok|0|sm_$DEVICE_ARCH built")
    else
      RESULTS+=("arch|FAIL|0|the device is sm_$DEVICE_ARCH; gancu_tests holds no sm_$DEVICE_ARCH code")
    fi
  fi
fi

# A test step passes only when its tests ran: none skipped (GANCU_REQUIRE_CUDA=1 already turns a
# CUDA test's skip into a failure; this also catches a skip the tests did not foresee) and at least
# one ran (a filter that matches nothing passes in gtest). CPU tests may skip in the whole-suite
# step (e.g. the TensorBoard cross-check without Python's tensorboard); CUDA suites never.
export GANCU_REQUIRE_CUDA=1
# The CUDA tests (CudaAvailability's no-device test skips where a GPU is present, by design).
CUDA_TESTS='^(CudaOps|CudaLabelOps|CudaTraining|ObjectiveStepCuda|Simt[A-Za-z]*|Nccl[A-Za-z]*)[.]|^Evaluation[.]CpuAndCudaAgree$'
require_ran() {  # NAME XML: records NAME_ran as FAIL when the XML shows no test or a CUDA skip
  local name=$1 xml=$2
  [ "$DRY_RUN" = 1 ] && return 0
  if [ ! -f "$xml" ]; then
    RESULTS+=("${name}_ran|FAIL|0|no gtest XML (the step did not run its tests)")
    return 0
  fi
  local total skipped
  total=$(grep -m1 '<testsuites' "$xml" | sed -n 's/.* tests="\([0-9]*\)".*/\1/p')
  # A skipped testcase: <testcase name=.. classname="Suite" ...> followed by <skipped.
  skipped=$(python3 - "$xml" "$CUDA_TESTS" <<'PY'
import re, sys, xml.etree.ElementTree as ET
cuda = re.compile(sys.argv[2])
names = (c.get("classname", "") + "." + c.get("name", "") for c in ET.parse(sys.argv[1]).iter("testcase")
         if c.find("skipped") is not None)
n = [t for t in names if cuda.search(t)]
print(len(n), " ".join(n[:5]))
PY
  )
  if [ -z "$total" ] || [ "$total" = 0 ]; then
    RESULTS+=("${name}_ran|FAIL|0|no test ran")
  elif [ "${skipped%% *}" != 0 ]; then
    RESULTS+=("${name}_ran|FAIL|0|CUDA tests skipped: $skipped")
  else
    RESULTS+=("${name}_ran|ok|0|$total tests, no CUDA test skipped")
  fi
}

TESTS=$BUILD/gancu_tests
BENCH=$BUILD/gancu_bench
if want test; then
  if [ -x "$TESTS" ] || [ "$DRY_RUN" = 1 ]; then
    step test_cuda 150 "$TESTS" --gtest_filter='Cuda*:ObjectiveStepCuda*' --gtest_output="xml:$LOGS/gtest_cuda.xml"
    require_ran test_cuda "$LOGS/gtest_cuda.xml"
    step test_all 200 "$TESTS" --gtest_output="xml:$LOGS/gtest_all.xml"
    require_ran test_all "$LOGS/gtest_all.xml"
  else
    skip test "no $TESTS (build failed?)"
  fi
fi

if want bench; then
  if [ -x "$BENCH" ] || [ "$DRY_RUN" = 1 ]; then
    step bench_ops 120 "$BENCH" --benchmark_filter="${GANCU_BENCH_FILTER:-^cuda/}" --benchmark_format=json \
      --benchmark_out="$LOGS/gancu_bench.json" --benchmark_out_format=json
  else
    skip bench_ops "no $BENCH (build failed?)"
  fi
fi

if want sanitize; then
  SANITIZER=$(command -v compute-sanitizer || echo "${CUDA_HOME_GUESS}/bin/compute-sanitizer")
  if { [ -x "$SANITIZER" ] && [ -x "$TESTS" ]; } || [ "$DRY_RUN" = 1 ]; then
    # The quick shapes (GANCU_TEST_QUICK): the tools slow kernels down 10-100x.
    for tool in memcheck racecheck initcheck synccheck; do
      extra=()
      [ "$tool" = memcheck ] && extra=(--leak-check full)
      step "sanitize_$tool" 90 env GANCU_TEST_QUICK=1 "$SANITIZER" --tool "$tool" "${extra[@]}" --error-exitcode 1 \
        --print-limit 30 "$TESTS" --gtest_filter="${GANCU_SANITIZE_FILTER:-CudaOps.*:CudaTraining.GraphReplay*}" \
        --gtest_output="xml:$LOGS/gtest_sanitize_$tool.xml"
      # A sanitizer over skipped tests checks nothing.
      require_ran "sanitize_$tool" "$LOGS/gtest_sanitize_$tool.xml"
    done
  else
    skip sanitize "compute-sanitizer or $TESTS missing"
  fi
fi

if want e2e; then
  if [ -x "$BUILD/gancu" ]; then
    step ceilings 60 python3 "$REPO/tools/measure_ceilings.py"
    cp "$LOGS/ceilings.log" "$LOGS/ceilings.json" 2>/dev/null
    # gancu and PyTorch eager side by side, every preset and batch (images/s and ratios).
    step e2e_eager 240 python3 "$REPO/tools/bench_compare.py" --backend cuda --preset mlp dcgan dcgan32 \
      --batch 64 256 1024 4096 --steps 50 --gancu "$BUILD/gancu" --python python3 \
      --raw "$LOGS/e2e_eager.jsonl" --out "$LOGS/e2e_eager.md"
    if [ -f "$LOGS/ceilings.json" ] && [ -f "$LOGS/e2e_eager.jsonl" ]; then
      peak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fp32_tflops"])' "$LOGS/ceilings.json" 2>/dev/null)
      bw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bandwidth_gbs"])' "$LOGS/ceilings.json" 2>/dev/null)
      step floor 20 python3 "$REPO/tools/floor.py" --peak-tflops "$peak" --bandwidth-gbs "$bw" --bench "$LOGS/e2e_eager.jsonl"
    fi
  else
    skip e2e "no $BUILD/gancu (build failed?)"
  fi
fi

if want torch; then
  # torch.compile(max-autotune) takes minutes per model: the two batches of the goals only.
  if [ -x "$BUILD/gancu" ]; then
    step e2e_compile 400 python3 "$REPO/tools/bench_compare.py" --backend cuda --preset mlp dcgan \
      --batch 64 4096 --steps 50 --compile --gancu "$BUILD/gancu" --python python3 \
      --raw "$LOGS/e2e_compile.jsonl" --out "$LOGS/e2e_compile.md"
  else
    skip e2e_compile "no $BUILD/gancu (build failed?)"
  fi
fi

# ---- Results ----------------------------------------------------------------------------------
gtest_counts() {  # "tests N, failures F, errors E, skipped S" from a gtest XML
  [ -f "$1" ] || { echo "no XML"; return; }
  local line
  line=$(grep -m1 '<testsuites' "$1")
  local t f e d
  t=$(echo "$line" | sed -n 's/.* tests="\([0-9]*\)".*/\1/p')
  f=$(echo "$line" | sed -n 's/.* failures="\([0-9]*\)".*/\1/p')
  e=$(echo "$line" | sed -n 's/.* errors="\([0-9]*\)".*/\1/p')
  d=$(echo "$line" | sed -n 's/.* disabled="\([0-9]*\)".*/\1/p')
  local s
  s=$(grep -c '<skipped' "$1")
  echo "tests $t, failures $f, errors $e, disabled $d, skipped $s"
}

failed=0
{
  echo "# gancu GPU check"
  echo
  echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "- commit: $(commit_id)"
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "- nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "- cuDNN: $( [ -n "$CUDNN_H" ] && grep -E '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$CUDNN_H" | awk '{print $3}' | paste -sd. -)"
  echo "- steps: $STEPS; dry run: $DRY_RUN; total ${BUDGET}s budget, $(elapsed)s used"
  echo "- CUDA tests: $(gtest_counts "$LOGS/gtest_cuda.xml")"
  echo "- all tests: $(gtest_counts "$LOGS/gtest_all.xml")"
  echo
  echo "| step | status | seconds | note |"
  echo "| --- | --- | --- | --- |"
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r n s t x <<<"$r"
    echo "| $n | $s | $t | $x |"
  done
  echo
  echo "Logs: gpu_check_logs.tar.gz (one .log per step, the gtest XML files, environment.txt)."
} >"$LOGS/summary.md"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r n s t x <<<"$r"
  case $s in FAIL | timeout) failed=1 ;; esac
done

# Keep every log under 4 MiB (the tail) so that the archive comes back.
for f in "$LOGS"/*.log; do
  [ -f "$f" ] || continue
  if [ "$(stat -c %s "$f")" -gt 4194304 ]; then
    tail -c 4194304 "$f" >"$f.tail" && mv "$f.tail" "$f"
  fi
done
tar -C "$WORK" -czf "$OUTDIR/gpu_check_logs.tar.gz" logs
cp "$LOGS/summary.md" "$OUTDIR/summary.md"
cp "$LOGS/environment.txt" "$OUTDIR/environment.txt" 2>/dev/null
for f in gancu_bench.json gtest_cuda.xml gtest_all.xml e2e_eager.md e2e_compile.md; do
  [ -f "$LOGS/$f" ] && cp "$LOGS/$f" "$OUTDIR/$f"
done

echo
echo "gpu_check summary (details in $OUTDIR/summary.md):"
printf '%-28s %-9s %8s  %s\n' step status seconds note
for r in "${RESULTS[@]}"; do
  IFS='|' read -r n s t x <<<"$r"
  printf '%-28s %-9s %8s  %s\n' "$n" "$s" "$t" "$x"
done
exit $failed
