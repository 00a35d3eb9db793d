#!/bin/sh
# Runs benchmark binaries one after another (make bench passes them all,
# with BUILD set to the build directory), each under a header and a time
# limit, then prints a summary: one line per binary, the figures that missed
# their target, and "N run, N failed". A binary fails when it exits non-zero
# (something did not work, or it was killed at the time limit); a missed
# target alone is reported, not failed. Exits non-zero if any binary failed.
#
#   BENCH_TIMEOUT  seconds allowed per binary (default 600)
set -u
limit=${BENCH_TIMEOUT:-600}
run=0
failed=0
summary=""
missed=""
nl='
'
if [ "$#" -eq 0 ]; then
    echo "usage: $0 BENCH_BINARY..." >&2
    exit 64
fi
for bin in "$@"; do
    name=${bin##*/}
    run=$((run + 1))
    echo "=== $name"
    out=$(mktemp) || exit 1
    start=$(date +%s)
    # Output goes to the terminal as it comes and to a file for the summary.
    { timeout -k 10 "$limit" "$bin" 2>&1; echo $? >"$out.rc"; } | tee "$out"
    rc=$(cat "$out.rc" 2>/dev/null || echo 1)
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        status="ok"
    else
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            status="FAILED (killed after ${limit} s)"
        else
            status="FAILED (exit status $rc)"
        fi
    fi
    summary="$summary$(printf '  %-20s %-32s %4d s' "$name" "$status" "$secs")$nl"
    m=$(grep 'MISSED' "$out" | sed "s|^|  $name: |")
    [ -n "$m" ] && missed="$missed$m$nl"
    rm -f "$out" "$out.rc"
done
echo "=== summary"
printf '%s' "$summary"
if [ -n "$missed" ]; then
    echo "targets missed:"
    printf '%s' "$missed"
fi
echo "$run run, $failed failed"
[ "$failed" -eq 0 ]
