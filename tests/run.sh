#!/bin/sh
# Run every test suite against the binaries in build dir $1 and end with one line
# "N passed, N failed". Each suite prints its own "... N passed, N failed" last line.
set -u
B=${1:-build/san}
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
log=$(mktemp -d)
total_pass=0
total_fail=0

# Run one suite; add its counts. A suite that crashes or prints no summary is one failure.
suite() {
    name=$1
    shift
    out="$log/$(echo "$name" | tr '/ ' '__').out"
    "$@" >"$out" 2>&1
    rc=$?
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\2/')
        f=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\3/')
    else
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$f" -ne 0 ]; then
        echo "FAIL $name (exit $rc): $line"
        grep -E 'not ok|FAIL|ERROR|Sanitizer|runtime error' "$out" | head -n 40 | sed 's/^/    /'
    else
        echo "ok   $name: $line"
    fi
}

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    suite "unit $(basename "$t")" "$t"
done

for f in "$B"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    n=$(basename "$f")
    suite "fuzz-replay $n" "$f" "tests/fuzz/corpus/${n#fuzz_}"
done

# The shipped playbooks' own tests, the documentation's worked example, and the engine's
# playbook functions tested through playbooks (tests/lua).
suite "playbook tests" "$B/kagari" playbook test playbooks docs/examples/playbooks tests/lua

if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
    suite "integration" python3 tests/integration/run.py "$B"
fi

# The portal in a real browser (playwright-core driving chromium headless).
if [ -f tests/browser/run.py ]; then
    suite "browser" python3 tests/browser/run.py "$B"
fi

rm -rf "$log"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
