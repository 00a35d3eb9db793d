#!/bin/sh
# Runs cmocka test binaries one after another, sums their results and prints
# the closing "N passed, N failed" line. A binary that dies without its
# summary (crash, sanitizer report, time-out) counts as one failure.
set -u
passed=0
failed=0
failed_names=""
limit=${TEST_TIMEOUT:-300}
for bin in "$@"; do
    name=${bin#*/tests/}
    echo "=== $name"
    out=$(mktemp)
    timeout -k 5 "$limit" "$bin" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
    rm -f "$out"
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $name exited with status $rc"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -gt 0 ] && failed_names="$failed_names $name"
done
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
