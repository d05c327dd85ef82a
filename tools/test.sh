#!/usr/bin/env bash
# The README's test command: install what is missing, build (Release), run the whole suite
# with ctest; then the unit and integration tests again under ASan+UBSan; then each
# libFuzzer target for a short bounded time. Exit non-zero on the first failure.
#
# The package step recompiles nothing and the fuzz stage builds only the fuzz targets and
# what they link. A second run reuses the build directories (and ccache, when installed).
# Every stage prints how long it took.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
fuzz_seconds=${SALVO_FUZZ_SECONDS:-15}
t0=$SECONDS
t=$SECONDS
took() {  # took WHAT: how long since the last call, and since the start
  echo "-- $1: $((SECONDS - t))s (total $((SECONDS - t0))s)"
  t=$SECONDS
}

tools/install_deps.sh
python3 tools/check_layers.py

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSALVO_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake --build build --target package  # build/salvo_<version>_<arch>.deb; it_package_test checks it
took "Release build and package"
# Everything: unit, integration, package and the long soak tests.
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600
took "Release tests"

# clang++-16 at -O1 with line tables only (-g1): a third of the compile time of g++ at -O2
# -g, and ASan/UBSan reports still name file and line. The soak and package tests stay in
# the Release stage (labels "soak", "package").
echo "== ASan+UBSan build"
cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO='-O1 -g1 -DNDEBUG' -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O1 -g1 -DNDEBUG' \
  -DSALVO_SANITIZE='address;undefined' -DSALVO_BUILD_BENCH=OFF -DSALVO_WERROR=ON >/dev/null
cmake --build build-san -j"$jobs"
took "ASan+UBSan build"
# Reports name functions and lines when a symbolizer is there (clang-16 does not bring one).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in /usr/lib/llvm-16/bin/llvm-symbolizer llvm-symbolizer-16 llvm-symbolizer; do
    if command -v "$s" >/dev/null 2>&1; then export ASAN_SYMBOLIZER_PATH; ASAN_SYMBOLIZER_PATH=$(command -v "$s"); break; fi
  done
fi
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-san --output-on-failure -j"$jobs" -L 'unit|integration' --timeout 900
took "ASan+UBSan tests"

if [ -d tests/fuzz ] && ls tests/fuzz/*_fuzz.cc >/dev/null 2>&1; then
  echo "== libFuzzer targets (${fuzz_seconds}s each)"
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 -DSALVO_FUZZ=ON \
    -DSALVO_BUILD_TESTS=OFF -DSALVO_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_targets
  took "fuzz build"
  # One target per core at a time (libFuzzer runs on one); each prints its lines when done.
  fuzz_one() {
    local f=$1 name corpus seeds out
    name=$(basename "$f")
    corpus=$(mktemp -d)
    seeds="tests/fuzz/corpus/${name%_fuzz}"
    [ -d "$seeds" ] && cp -r "$seeds"/. "$corpus"/
    out=$("$f" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$corpus" 2>&1 | grep -E '^(stat::number_of_executed_units|==|SUMMARY)' || true)
    printf -- '-- %s\n%s\n' "$name" "$out"
    "$f" -runs=0 "$corpus" >/dev/null 2>&1  # re-check the corpus; fails on any crash
    rm -rf "$corpus"
  }
  export -f fuzz_one
  export fuzz_seconds
  printf '%s\n' build-fuzz/fuzz/*_fuzz | xargs -P "$jobs" -I{} bash -c 'set -euo pipefail; fuzz_one "$1"' _ {}
  # any crash leaves crash-* artifacts in the working directory
  if ls crash-* leak-* timeout-* >/dev/null 2>&1; then
    echo "fuzz: crash artifacts found" >&2
    exit 1
  fi
  took "fuzz runs"
fi
echo "== tools/test.sh: all green in $((SECONDS - t0))s"
