#!/bin/sh
# Runs cmocka test binaries one after another, sums their results and prints
# the closing "N passed, N failed" line. A binary that dies without its
# summary (crash, sanitizer report, time-out) counts as one failure.
set -u
passed=0
failed=0
failed_names=""
limit=${TEST_TIMEOUT:-300}
# Binaries named in VALGRIND_BINS run a second time under valgrind: any
# leak or memory error fails them (the pure core must stay clean).
vg_list=""
if [ -n "${VALGRIND_BINS:-}" ] && command -v valgrind >/dev/null 2>&1; then
    for b in $VALGRIND_BINS; do vg_list="$vg_list valgrind:$b"; done
fi
for bin in "$@" $vg_list; do
    case "$bin" in
    valgrind:*)
        bin=${bin#valgrind:}
        name="${bin#*/tests/} (valgrind)"
        set -- valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$bin" ;;
    *)
        name=${bin#*/tests/}
        set -- "$bin" ;;
    esac
    echo "=== $name"
    out=$(mktemp)
    timeout -k 5 "$limit" "$@" >"$out" 2>&1
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
