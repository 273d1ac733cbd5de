#!/usr/bin/env bash
# Runs gancu's libFuzzer harnesses (tests/fuzz/fuzz_NAME.cpp) from the checking build.
#
#   tools/fuzz.sh [SECONDS] [NAME...]   fuzz each harness for SECONDS (default 600), all by default
#   tools/fuzz.sh --replay [NAME...]    run each harness once over its committed corpus only
#
# The build is ${GANCU_FUZZ_BUILD:-build-asan}, made by tools/test_sanitized.sh (clang, ASan +
# UBSan, -DGANCU_FUZZ=ON). Seeds are tests/fuzz/corpus/NAME (tools/fuzz_seeds.py writes them); the
# inputs a run finds go to BUILD/fuzz/work/NAME (copy the useful ones into the corpus), crashing
# inputs to BUILD/fuzz/findings/, each harness's output to BUILD/fuzz/NAME.log. Runs at nice 19.
# Exit 1 when any harness reports a crash, a hang, a leak or a sanitizer error.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GANCU_FUZZ_BUILD:-build-asan}
replay=0
seconds=600
if [ "${1:-}" = "--replay" ]; then
  replay=1
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do
    n=$(basename "$f" .cpp)
    names+=("${n#fuzz_}")
  done
fi
mkdir -p "$build/fuzz/findings"
# Sanitizer reports end the run with a stack; leaks are findings too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for name in "${names[@]}"; do
  bin="$build/fuzz_$name"
  corpus="tests/fuzz/corpus/$name"
  [ -x "$bin" ] || { echo "fuzz: $bin missing (build it with tools/test_sanitized.sh --build-only)"; exit 2; }
  [ -d "$corpus" ] || { echo "fuzz: no seed corpus $corpus (tools/fuzz_seeds.py writes it)"; exit 2; }
  log="$build/fuzz/$name.log"
  start=$(date +%s)
  if [ $replay -eq 1 ]; then
    # Every committed input once: the regression test of past findings.
    if nice -n 19 "$bin" -runs=0 -timeout=20 "$corpus" >"$log" 2>&1; then status=ok; else status=FAILED; fi
    echo "fuzz: $name: replayed $(ls "$corpus" | wc -l) inputs in $(($(date +%s) - start)) s: $status"
  else
    work="$build/fuzz/work/$name"
    mkdir -p "$work"
    if nice -n 19 "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz/findings/$name-" "$work" "$corpus" >"$log" 2>&1; then
      status=ok
    else
      status=FAILED
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $name: $(($(date +%s) - start)) s, $runs inputs, $cov, corpus $(ls "$work" | wc -l) new: $status"
  fi
  if [ $status = FAILED ]; then
    failed+=("$name")
    grep -E "ERROR|SUMMARY|runtime error|Test unit written|uncaught|internal check" "$log" | head -20 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (logs in $build/fuzz/, inputs in $build/fuzz/findings/)"
  exit 1
fi
echo "fuzz: all ${#names[@]} harnesses clean"
