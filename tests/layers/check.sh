#!/bin/sh
# check.sh - the layers of daemon/ as the build sees them (README "Source
# layout"). Reads every object file with nm and fails on
#   - a call that goes up a layer: core -> nothing else; config -> core;
#     io -> core; out -> core, io; only the wiring (slawatchd.c, and
#     daemon/ctl/*.c, the files of slawatchctl) calls everything, and
#     nothing below it calls into it (the files of the wiring may call
#     each other);
#   - a cycle between files (a calls into b and b, through any chain, into a),
#     except the deliver pair (deliver.c, deliver_send.c), which is one
#     subsystem split in two files;
# and checks that the Makefile refuses a core file that includes an I/O
# library's header. The rules are first run on a made-up graph that breaks
# each of them, so a checker that cannot fail fails here.
#
# Usage: tests/layers/check.sh [BUILD]   (prints a cmocka-style summary)
set -u
BUILD=${1:-${BUILD:-build}}
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { echo "[       OK ] $1"; passed=$((passed + 1)); }
bad() { echo "[  FAILED  ] $1"; failed=$((failed + 1)); }

# Edges "caller_layer caller_file callee_layer callee_file symbol" on stdin;
# prints one line per violation.
judge() {
    awk '
    BEGIN {
        allow["core", "core"] = 1
        allow["config", "core"] = 1; allow["config", "config"] = 1
        allow["io", "core"] = 1; allow["io", "io"] = 1
        allow["out", "core"] = 1; allow["out", "io"] = 1; allow["out", "out"] = 1
        split("core config io out main", L, " ")
        for (i in L) allow["main", L[i]] = 1
        pair["deliver", "deliver_send"] = 1; pair["deliver_send", "deliver"] = 1
    }
    {
        if (!(($1, $3) in allow))
            printf "call up: %s/%s calls %s in %s/%s\n", $1, $2, $5, $3, $4
        if ($3 == "main" && $1 != "main")
            printf "call into the wiring: %s/%s calls %s in %s\n", $1, $2, $5, $4
        if (!(($2, $4) in e)) { e[$2, $4] = $5; r[$2, $4] = 1 }
        f[$2] = 1; f[$4] = 1
    }
    END {
        for (k in f) for (i in f) if ((i, k) in r) for (j in f) if ((k, j) in r) r[i, j] = 1
        for (a in f) for (b in f)
            if (a < b && ((a, b) in r) && ((b, a) in r) && !((a, b) in pair))
                printf "cycle: %s and %s call each other (through %s)\n", a, b,
                       ((a, b) in e) ? e[a, b] : "a chain"
    }'
}

# 1. The checker on a graph that breaks every rule.
printf '%s\n' "core core config config_yaml cfg_x" \
              "io ingest main slawatchd sw_up" \
              "out publish out report report_x" \
              "out report out notify notify_x" \
              "out notify out publish publish_x" \
              "out deliver out deliver_send dlv_x" \
              "out deliver_send out deliver dlv_y" \
              "main ctl_main main ctl_view ctl_x" | judge >"$tmp/self"
if grep -q '^call up: core/core calls cfg_x' "$tmp/self" &&
   grep -q '^call into the wiring: io/ingest' "$tmp/self" &&
   grep -q '^cycle: notify and publish\|^cycle: notify and report\|^cycle: publish and report' "$tmp/self" &&
   ! grep -q 'deliver' "$tmp/self" && ! grep -q 'ctl_' "$tmp/self"; then
    ok "the checker finds a call up, a call into the wiring and a cycle, and allows calls between the wiring's files"
else
    cat "$tmp/self"
    bad "the checker finds a call up, a call into the wiring and a cycle"
fi

# 2. The real objects.
objs=$(find "$BUILD/daemon" -name '*.o' 2>/dev/null)
if [ -z "$objs" ]; then
    bad "object files under $BUILD/daemon (build first)"
else
    for o in $objs; do
        f=$(basename "$o" .o)
        case "$o" in
        */daemon/core/*) l=core ;; */daemon/config/*) l=config ;;
        */daemon/io/*) l=io ;; */daemon/out/*) l=out ;;
        */daemon/ctl/*) l=main ;; *) l=main ;;
        esac
        nm "$o" | awk -v l="$l" -v f="$f" '
            NF == 3 && $2 ~ /^[TDBRG]$/ { print "D", l, f, $3 }
            NF == 2 && $1 == "U" { print "U", l, f, $2 }'
    done >"$tmp/syms"
    # Definitions first, so every use can be resolved.
    awk '$1 == "D"' "$tmp/syms" >"$tmp/defs"
    awk 'NR == FNR { def[$4] = $2 " " $3; next }
         $1 == "U" && ($4 in def) { split(def[$4], d, " "); if (d[2] != $3) print $2, $3, d[1], d[2], $4 }' \
        "$tmp/defs" "$tmp/syms" >"$tmp/edges"
    judge <"$tmp/edges" >"$tmp/real"
    if [ -s "$tmp/real" ]; then
        cat "$tmp/real"
        bad "no call up a layer, none into the wiring, no cycle between files"
    else
        ok "no call up a layer, none into the wiring, no cycle between files ($(wc -l <"$tmp/edges") calls)"
    fi
fi

# 3. The build refuses an I/O header in the core, and takes a clean file.
if make --no-print-directory -s NODEPS=1 BUILD="$tmp/b" core-probe PROBE=probe_clean \
        >"$tmp/clean" 2>&1; then
    ok "a clean core file builds"
else
    cat "$tmp/clean"
    bad "a clean core file builds"
fi
if make --no-print-directory -s NODEPS=1 BUILD="$tmp/b" core-probe PROBE=probe_forbidden \
        >"$tmp/forb" 2>&1; then
    bad "a core file that includes hiredis fails the build"
elif grep -q 'must not include an I/O library header' "$tmp/forb" &&
     grep -q 'hiredis' "$tmp/forb"; then
    ok "a core file that includes hiredis fails the build"
else
    cat "$tmp/forb"
    bad "a core file that includes hiredis fails the build (for the wrong reason)"
fi

echo "[==========] $((passed + failed)) test(s) run."
[ "$passed" -gt 0 ] && echo "[  PASSED  ] $passed test(s)."
[ "$failed" -gt 0 ] && echo "[  FAILED  ] $failed test(s)."
[ "$failed" -eq 0 ]
