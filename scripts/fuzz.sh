#!/bin/sh
# Runs libFuzzer targets one after another (make fuzz; docs/fuzzing.md).
#   scripts/fuzz.sh BUILD TARGET...     e.g. scripts/fuzz.sh build-fuzz state hook
# Each BUILD/fuzz/fuzz_TARGET runs for FUZZ_SECONDS (default 60) on
# fuzz/corpus/TARGET and fuzz/regress/TARGET; the inputs it finds go to
# BUILD/fuzz/corpus/TARGET (never into the tree), crashes, leaks and
# time-outs to BUILD/fuzz/artifacts/TARGET/, its output to
# BUILD/fuzz/logs/TARGET.log. fuzz/TARGET.dict, when present, is its
# dictionary. FUZZ_FLAGS adds libFuzzer flags (e.g. "-fork=1
# -ignore_crashes=1" to go on after a crash); FUZZ_NICE runs the targets
# under nice. Prints one line per target (executions, coverage, crashes)
# and fails when any target found something.
set -u
build=${1:?usage: $0 BUILD TARGET...}
shift
secs=${FUZZ_SECONDS:-60}
cd "$(dirname "$0")/.." || exit 1
status=0
summary=""
for t in "$@"; do
    bin=$build/fuzz/fuzz_$t
    work=$build/fuzz/corpus/$t
    art=$build/fuzz/artifacts/$t
    log=$build/fuzz/logs/$t.log
    mkdir -p "$work" "$art" "$(dirname "$log")"
    set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/"
    [ -f "fuzz/$t.dict" ] && set -- "$@" -dict="fuzz/$t.dict"
    dirs="$work fuzz/corpus/$t"
    [ -d "fuzz/regress/$t" ] && dirs="$dirs fuzz/regress/$t"
    echo "=== fuzz $t for ${secs}s (log: $log)"
    before=$(find "$art" -type f | wc -l)
    # shellcheck disable=SC2086
    nice -n "${FUZZ_NICE:-0}" "$bin" "$@" ${FUZZ_FLAGS:-} $dirs >"$log" 2>&1
    rc=$?
    found=$(($(find "$art" -type f | wc -l) - before))
    # The last status line holds the final coverage; the stats the totals.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\(\/[0-9a-zA-Z]*\)\{0,1\}\).*/\1/p')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # -fork prints no stats: its status lines count the executions.
    [ -n "$execs" ] || execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    line="$t: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, $found new artifact(s), exit $rc"
    echo "$line"
    summary="$summary$line
"
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        status=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5
        ls "$art" | tail -n 5
    fi
done
echo "=== fuzz summary (${secs}s per target)"
printf '%s' "$summary"
exit $status
