#!/bin/sh
# make run: a short, self-contained demonstration of slawatchd.
#
# Starts a private redis-server on a free loopback port in a temporary
# directory (unless SLAWATCH_CONFIG names a config whose Redis you want to
# use), runs build/slawatchd with conf/slawatch.yaml pointed at it, feeds a
# few events whose SLA clocks are close to their deadlines, and shows the
# warnings, breaches and gauges as they happen. Interactive: keeps running
# until Ctrl-C; otherwise stops after the demonstration.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/slawatch-demo-XXXXXX)
redis_pid=""
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -n "${SLAWATCH_CONFIG:-}" ]; then
    cfg=$SLAWATCH_CONFIG
    port=$(sed -n 's/^  port: *\([0-9]*\).*/\1/p' "$cfg" | head -n 1)
    prefix=$(sed -n 's/^  prefix: *"\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$cfg" | head -n 1)
else
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
           echo $((20000 + $$ % 20000)))
    redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save "" \
        --appendonly no --logfile "$tmp/redis.log" --daemonize no &
    redis_pid=$!
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    sed "s/^  port: 6379/  port: $port/" "$here/conf/slawatch.yaml" > "$tmp/slawatch.yaml"
    cfg=$tmp/slawatch.yaml
    prefix="sla:"
    echo "== private redis-server on 127.0.0.1:$port (data in $tmp)"
fi
rcli() { redis-cli -p "$port" "$@"; }
ctl() { "$build/slawatchctl" -c "$cfg" "$@"; }

"$build/slawatchd" -c "$cfg" -t
echo "== starting slawatchd (its log follows)"
"$build/slawatchd" -c "$cfg" &
daemon_pid=$!
for _ in $(seq 50); do
    rcli XINFO GROUPS "${prefix}events" 2>/dev/null | grep -q slawatch && break
    sleep 0.1
done

now=$(date +%s%3N)
echo
echo "== feeding demo events (timestamps are backdated so that deadlines come soon)"
echo "   T-1001 urgent, opened 4m55s ago: 80% warning now, breach of the 5m target in 5 s"
ctl emit opened T-1001 priority=urgent queue=billing ts=$((now - 295000)) >/dev/null
echo "   T-1002 high, opened 59m52s ago: warning now, breach of the 1h target in 8 s"
ctl emit opened T-1002 priority=high channel=email ts=$((now - 3592000)) >/dev/null
echo "   T-1003 phone call, opened 4m57s ago, answered in 2 s: warning, then met"
ctl emit opened T-1003 channel=phone ts=$((now - 297000)) >/dev/null
echo "   T-1004 normal: 4h to answer, nothing happens"
ctl emit opened T-1004 priority=normal >/dev/null
echo "   one malformed event (no ticket): dead-lettered, the daemon carries on"
rcli XADD "${prefix}events" '*' type opened priority urgent >/dev/null
sleep 2
ctl emit responded T-1003 >/dev/null
sleep 8

echo
echo "== ${prefix}breaches (XRANGE):"
rcli XRANGE "${prefix}breaches" - + | paste -sd' ' | sed 's/ \([0-9]\{13\}-[0-9]*\) kind/\n\1 kind/g'
echo
echo "== ${prefix}events:dead:"
rcli XRANGE "${prefix}events:dead" - + | paste -sd' '
echo
echo "== slawatchctl report:"
ctl report
if [ -t 0 ]; then
    echo
    echo "== slawatchd keeps running; try: $build/slawatchctl -c $cfg emit opened T-1 priority=urgent"
    echo "   Ctrl-C stops it."
    wait "$daemon_pid"
fi
