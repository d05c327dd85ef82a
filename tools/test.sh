#!/usr/bin/env bash
# The README's test command: install what is missing, build (Release), run the whole suite
# with ctest; then the unit and integration tests again under ASan+UBSan; then each
# libFuzzer target for a short bounded time. Exit non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
fuzz_seconds=${SALVO_FUZZ_SECONDS:-15}

tools/install_deps.sh
python3 tools/check_layers.py

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSALVO_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake --build build --target package  # build/salvo_<version>_<arch>.deb; it_package_test checks it
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600

echo "== ASan+UBSan build"
cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSALVO_SANITIZE='address;undefined' -DSALVO_BUILD_BENCH=OFF -DSALVO_WERROR=ON >/dev/null
cmake --build build-san -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-san --output-on-failure -j"$jobs" -L 'unit|integration' --timeout 900

if [ -d tests/fuzz ] && ls tests/fuzz/*_fuzz.cc >/dev/null 2>&1; then
  echo "== libFuzzer targets (${fuzz_seconds}s each)"
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 -DSALVO_FUZZ=ON \
    -DSALVO_BUILD_TESTS=OFF -DSALVO_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_targets
  for f in build-fuzz/fuzz/*_fuzz; do
    name=$(basename "$f")
    corpus=$(mktemp -d)
    seeds="tests/fuzz/corpus/${name%_fuzz}"
    [ -d "$seeds" ] && cp -r "$seeds"/. "$corpus"/
    echo "-- $name"
    "$f" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      "$corpus" 2>&1 | grep -E '^(stat::number_of_executed_units|==|SUMMARY)' || true
    "$f" -runs=0 "$corpus" >/dev/null 2>&1  # re-check the corpus; fails on any crash
    rm -rf "$corpus"
  done
  # any crash leaves crash-* artifacts in the working directory
  if ls crash-* leak-* timeout-* >/dev/null 2>&1; then
    echo "fuzz: crash artifacts found" >&2
    exit 1
  fi
fi
echo "== tools/test.sh: all green"
