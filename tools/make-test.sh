#!/usr/bin/env bash
# The passes of `make test`, each run even when one before it failed, so one
# missing tool or failing test does not hide the rest; the failed passes are
# listed at the end and the run fails. Called by the Makefile, which passes
# MAKE, BUILD, ASAN_BUILD, REL_BUILD, JOBS and REL_SKIP.
set -u
failed=()
pass() {
  local name=$1
  shift
  echo "=== make test: $name"
  if "$@"; then
    return 0
  fi
  echo "=== make test: $name FAILED"
  failed+=("$name")
  return 1
}
# ctest_in DIR SEEDS_SCALE [ctest args]
ctest_in() {
  local dir=$1 scale=$2
  shift 2
  (cd "$dir" && BW_SIM_SEEDS_SCALE=$scale ctest --output-on-failure -j "$JOBS" "$@")
}

pass "format-check" "$MAKE" --no-print-directory format-check
pass "fuzz-smoke" "$MAKE" --no-print-directory fuzz-smoke
# The simulator seeds are 3 in 100 in the sanitizer pass (a simulated
# cluster runs some 30 times slower under the sanitizers: at a tenth the
# pass took 28 minutes of a 52-minute run) and a tenth in the release pass;
# the sanitizer pass leaves out the planted-bug hunts (the first pass shows
# the checkers' power) and the release pass the longest real-process runs.
# Every sweep runs the first seeds of the full pass's: a subset of them.
if pass "build ($BUILD)" "$MAKE" --no-print-directory build; then
  pass "ctest ($BUILD)" ctest_in "$BUILD" 1
fi
if pass "build ($ASAN_BUILD)" "$MAKE" --no-print-directory build-asan; then
  pass "ctest ($ASAN_BUILD)" ctest_in "$ASAN_BUILD" 0.03 -E PlantedBugTest
fi
if pass "build ($REL_BUILD)" "$MAKE" --no-print-directory build-release; then
  pass "ctest ($REL_BUILD)" ctest_in "$REL_BUILD" 0.1 -E "$REL_SKIP"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "make test: ${#failed[@]} pass(es) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "make test: every pass passed"
