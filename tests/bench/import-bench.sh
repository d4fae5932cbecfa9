#!/bin/sh
# URL-import throughput (issue 6): a ~1 GB capture imported from Azurite
# over HTTPS on loopback versus the same file imported from local disk.
# Passes when the URL import takes at most 1.3x as long (download and
# parsing overlap).  CAPATLAS_BENCH_MB sets the size (default 1024);
# CAPATLAS_BENCH_FILE uses a given capture instead (e.g. gencap -m 1024).
cd "$(dirname "$0")/../.." || exit 1
: "${CAPATLAS_PCAPS:=$(cd .. && pwd)/shared/pcaps}"
export CAPATLAS_PCAPS
exec node --test --test-reporter=spec tests/bench/import.bench.mjs
