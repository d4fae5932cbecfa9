#!/bin/sh
# The views' performance check on a 1-million-flow workspace (issue 7): per-view draw time after a
# filter change, flows grid scroll long tasks. CAPATLAS_BENCH_FLOWS sets the size.
cd "$(dirname "$0")/../.." || exit 1
: "${CAPATLAS_PCAPS:=$(cd .. && pwd)/shared/pcaps}"
export CAPATLAS_PCAPS
exec node --test --test-reporter=spec tests/browser/perf.bench.mjs
