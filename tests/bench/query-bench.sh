#!/bin/sh
# Query engine benchmark (issue 4): 1M and 10M-flow workspaces built by build/tests/mkflows,
# p50/p99 per query through nginx + HTTPS + FastCGI, and the same queries in PostgreSQL 15.
# CAPATLAS_QBENCH_SIZES=1000000 for a quicker run; see tests/bench/query-bench.mjs for the rest.
cd "$(dirname "$0")/../.." || exit 1
exec node tests/bench/query-bench.mjs
