#!/bin/sh
# Readers during a ~1 GB import (issue 4): wrk, 32 connections, summary and flows endpoints,
# idle then during the import; no errors and p99 <= 3x idle.  See tests/bench/query-concurrency.mjs.
cd "$(dirname "$0")/../.." || exit 1
exec node tests/bench/query-concurrency.mjs
