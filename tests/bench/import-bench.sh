#!/bin/sh
# URL-import throughput (issue 6): a ~1 GB capture imported from Azurite
# over HTTPS on loopback versus the same file imported from local disk.
# Passes when the URL import takes at most 1.3x as long (download and
# parsing overlap).  After a warm-up import, local and URL imports take
# turns CAPATLAS_BENCH_ROUNDS times (2) and the fastest of each count; each
# run prints its time, the load average, the CPU seconds of capatlas and
# Azurite, and the import worker's parser CPU, the parser's wait for a CPU
# and the download's CPU; each import starts after a sync (no earlier step's writeback
# in its time).  CAPATLAS_BENCH_MB sets the size (default 1024);
# CAPATLAS_BENCH_FILE uses a given capture instead (e.g. gencap -m 1024);
# CAPATLAS_BENCH_AZURITE=disk keeps the blob in Azurite's files rather
# than its memory.
cd "$(dirname "$0")/../.." || exit 1
: "${CAPATLAS_PCAPS:=$(cd .. && pwd)/shared/pcaps}"
export CAPATLAS_PCAPS
exec node --test --test-reporter=spec tests/bench/import.bench.mjs
