#!/bin/sh
# The views' performance check on a 1-million-flow workspace (issue 7): per-view draw time after a
# filter change (split into server wait and client time, each request also timed alone, each
# view's charts' fastest redraw), flows grid scroll long tasks (wall, untraced) then the renderer's
# CPU per frame (traced). The workspace comes from build/tests/mkflows (tests/bench/README.md).
# CAPATLAS_BENCH_FLOWS sets the size, CAPATLAS_BENCH_TABS the views, CAPATLAS_BENCH_STRICT=0
# prints without failing on a missed target.
cd "$(dirname "$0")/../.." || exit 1
[ -x "${CAPATLAS_MKFLOWS:-build/tests/mkflows}" ] || { echo "no mkflows: run make build" >&2; exit 1; }
[ -n "$CAPATLAS_WEBROOT" ] || make -s frontend >/dev/null || { echo "cannot build frontend/dist" >&2; exit 1; }
echo "# $(uptime)"
node --test --test-reporter=spec tests/browser/perf.bench.mjs
rc=$?
echo "# $(uptime)"
exit $rc
