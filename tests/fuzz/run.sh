#!/bin/sh
# Runs the capture-decoder fuzz target as TAP: (1) replays the saved corpus
# tests/fuzz/corpus/, (2) fuzzes for SECONDS (default 60) from it, new units
# going to a scratch directory so the saved corpus stays small and reviewed.
# Crashes are written to build/fuzz/artifacts/.  Usage: run.sh [SECONDS]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
SECS=${1:-60}
BIN=build/fuzz/fuzz_capture
ART=build/fuzz/artifacts
WORK=build/fuzz/work
mkdir -p "$ART" "$WORK"
echo "1..2"
if [ ! -x "$BIN" ]; then
    echo "not ok 1 - fuzz target $BIN not built (make fuzz-build)"
    echo "not ok 2 - fuzz run skipped"
    exit 1
fi
# nDPI and libpcap are not instrumented; leaks in them are not ours to fix here.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
n=$(ls tests/fuzz/corpus | wc -l)
if "$BIN" -runs=0 -artifact_prefix="$ART/" tests/fuzz/corpus >"$WORK/replay.log" 2>&1; then
    echo "ok 1 - fuzz corpus replay ($n inputs)"
else
    tail -30 "$WORK/replay.log" | sed 's/^/# /'
    echo "not ok 1 - fuzz corpus replay ($n inputs)"
fi
if "$BIN" -max_total_time="$SECS" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$ART/" "$WORK" tests/fuzz/corpus >"$WORK/run.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/run.log")
    echo "ok 2 - fuzz ${SECS}s without a crash or sanitizer report ($execs execs)"
else
    grep -E 'ERROR|SUMMARY|#[0-9]+ +(DONE|NEW)|artifact' "$WORK/run.log" | tail -30 | sed 's/^/# /'
    echo "not ok 2 - fuzz ${SECS}s: crash or sanitizer report (see $WORK/run.log)"
    exit 1
fi
