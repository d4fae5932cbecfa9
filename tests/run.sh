#!/bin/sh
# Runs every test and prints one closing line "N passed, M failed".
#   1. the C unit tests (build/tests/test_*), then again under ASan+UBSan
#      (build/san/tests/test_*) when that build exists;
#   1b. the libFuzzer target (tests/fuzz/run.sh: corpus replay + 60 s);
#   2. the end-to-end and browser tests (node --test, TAP), against real
#      nginx + capatlasd started by tests/lib/server.mjs; the API tests run
#      a second time against the ASan/UBSan server.
# Each TAP "ok"/"not ok" line counts once.  Output of each suite goes to
# tests/output/<suite>.log as well.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=$ROOT/tests/output
mkdir -p "$OUT"
: "${CAPATLAS_PCAPS:=$(cd "$ROOT/.." && pwd)/shared/pcaps}"
export CAPATLAS_PCAPS

pass=0
fail=0

# count LOG: adds the log's TAP results to the totals.
count() {
    p=$(grep -cE '^ok [0-9]+' "$1")
    f=$(grep -cE '^not ok [0-9]+' "$1")
    # Node's TAP nests files and suites; its closing summary counts the tests.
    case "$2" in node)
        p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$1" | tail -1)
        f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$1" | tail -1)
        c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$1" | tail -1)
        p=${p:-0}
        f=$((${f:-0} + ${c:-0}))
        ;;
    esac
    pass=$((pass + p))
    fail=$((fail + f))
}

run_suite() { # name kind command...
    name=$1 kind=$2
    shift 2
    echo "== $name"
    "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    cat "$OUT/$name.log"
    count "$OUT/$name.log" "$kind"
    if [ $rc -ne 0 ] && ! grep -qE '^ *not ok ' "$OUT/$name.log"; then
        echo "not ok - $name exited with status $rc"
        fail=$((fail + 1))
    fi
}

for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    run_suite "unit-$(basename "$t")" c "$t"
done
for t in build/san/tests/test_*; do
    [ -x "$t" ] || continue
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite "san-$(basename "$t")" c "$t"
done

# The capture-decoder fuzz target: saved corpus replay plus a 60 s run.
if [ -x build/fuzz/fuzz_capture ]; then
    run_suite fuzz c sh tests/fuzz/run.sh 60
fi

NODE_TEST="node --test --test-reporter=tap"
if ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
    run_suite e2e node $NODE_TEST tests/e2e/*.test.mjs
    if [ -x build/san/capatlasd ]; then
        CAPATLAS_BIN=$ROOT/build/san/capatlasd run_suite e2e-san node $NODE_TEST tests/e2e/*.test.mjs
    fi
fi
if ls tests/browser/*.test.mjs >/dev/null 2>&1; then
    run_suite browser node $NODE_TEST tests/browser/*.test.mjs
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
