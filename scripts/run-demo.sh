#!/bin/sh
# make run: a short, self-contained demonstration of slawatchd (about 20 s).
#
# Starts, in a temporary directory and on loopback only,
#   - a private redis-server on a free port,
#   - the demo webhook receiver (contrib/demo/receiver.c), which checks the
#     json signatures and prints every notification it gets,
#   - slawatchd with conf/slawatch.yaml pointed at both (the few changes are
#     shown first),
# then feeds events whose SLA clocks are close to their deadlines and shows
# the deliveries arriving, warnings, breaches, a recovered notice, dead
# letters, and what slawatchctl says (tickets --overdue, outbox, status,
# report). It ends by saying how to run it against a real Redis and
# receiver. Interactive (a terminal on stdin): keeps running until Ctrl-C.
#
# SLAWATCH_CONFIG=FILE make run: the same events against the Redis and the
# receivers FILE names; nothing is started here but slawatchd.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/slawatch-demo-XXXXXX)
redis_pid=""
rx_pid=""
daemon_pid=""
stop() { # pid: TERM, then wait for it (only processes started here)
    [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
    return 0
}
cleanup() {
    stop "$daemon_pid"
    stop "$rx_pid"
    stop "$redis_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
step() { printf '\n== %s\n' "$*"; }

if [ -n "${SLAWATCH_CONFIG:-}" ]; then
    cfg=$SLAWATCH_CONFIG
    port=$(sed -n 's/^  port: *\([0-9]*\).*/\1/p' "$cfg" | head -n 1)
    prefix=$(sed -n 's/^  prefix: *"\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$cfg" | head -n 1)
    step "using $cfg: its Redis (port ${port:-6379}) and its webhook receivers"
else
    port=$("$build/slawatch-demo-receiver" --free-port)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save "" \
        --appendonly no --logfile "$tmp/redis.log" --daemonize no &
    redis_pid=$!
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    # The receiver, and the secret it shares with slawatchd for the json
    # webhook's HMAC signature.
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/oncall.secret"
    chmod 600 "$tmp/oncall.secret"
    "$build/slawatch-demo-receiver" --port-file "$tmp/rx.port" \
        --secret-file "$tmp/oncall.secret" &
    rx_pid=$!
    for _ in $(seq 50); do
        [ -s "$tmp/rx.port" ] && break
        sleep 0.1
    done
    rxport=$(cat "$tmp/rx.port")
    # conf/slawatch.yaml with this Redis and receiver, a signed json webhook,
    # a second warning on the instant tier so that one comes within seconds,
    # and faster rounds so the report has something to show.
    cfg=$tmp/slawatch.yaml
    sed -e "s/^  port: 6379/  port: $port/" \
        -e "s|http://127.0.0.1:9099/|http://127.0.0.1:$rxport/|" \
        -e "s|^    # secret_file: /etc/slawatch/oncall.secret|    secret_file: $tmp/oncall.secret|" \
        -e 's/^\(  instant: { response: 5m, resolution: 4h, warn: \)\[80%\]/\1[80%, 98%]/' \
        -e 's/^  publish_every: 10s/  publish_every: 2s/' \
        -e 's/^  checkpoint_every: 30s/  checkpoint_every: 5s/' \
        "$here/conf/slawatch.yaml" >"$cfg"
    for want in "port: $port" "127.0.0.1:$rxport/hook" "secret_file: $tmp" "80%, 98%" \
                "publish_every: 2s" "checkpoint_every: 5s"; do
        grep -qF "$want" "$cfg" || { echo "run-demo: conf/slawatch.yaml changed; fix the demo's edits ($want)" >&2; exit 1; }
    done
    prefix="sla:"
    step "private redis-server on 127.0.0.1:$port, receiver on 127.0.0.1:$rxport (in $tmp)"
    echo "   conf/slawatch.yaml with these changes:"
    diff "$here/conf/slawatch.yaml" "$cfg" | sed -n 's/^> /     /p'
fi
rcli() { redis-cli -p "${port:-6379}" "$@"; }
ctl() { "$build/slawatchctl" -c "$cfg" "$@"; }
# Stream entries one a line: ID field=value ... (field names are never IDs).
entries() {
    awk 'BEGIN { k = "" }
         k == "" && /^[0-9]+-[0-9]+$/ { if (NR > 1) printf "\n"; printf "   %s", $0; next }
         k == "" { k = $0; next }
         { printf " %s=%s", k, $0; k = "" }
         END { if (NR) printf "\n" }'
}

"$build/slawatchd" -c "$cfg" -t
step "starting slawatchd (its log lines are interleaved below)"
"$build/slawatchd" -c "$cfg" &
daemon_pid=$!
for _ in $(seq 50); do
    rcli XINFO GROUPS "${prefix}events" 2>/dev/null | grep -q slawatch && break
    sleep 0.1
done

now=$(date +%s%3N)
step "feeding demo events (timestamps are backdated so that deadlines come soon)"
echo "   T-1001 urgent, opened 4m50s ago: 98% warning in 4 s, breach of its 5m response in 10 s, answered at 12 s"
ctl emit opened T-1001 priority=urgent queue=billing ts=$((now - 290000)) >/dev/null
echo "   T-1002 high, opened 59m52s ago: breach of its 1h response in 8 s, never answered"
ctl emit opened T-1002 priority=high queue=billing ts=$((now - 3592000)) >/dev/null
echo "   T-1003 phone call, opened 4m50s ago: 98% warning in 4 s, answered at 6 s: met"
ctl emit opened T-1003 channel=phone queue=sales ts=$((now - 290000)) >/dev/null
echo "   T-1004 normal: 4h to answer, nothing happens"
ctl emit opened T-1004 priority=normal >/dev/null
echo "   T-1005 priority=High: no policy names 'High' (policies say 'high'), so it falls to the default tier"
ctl emit opened T-1005 priority=High >/dev/null
echo "   two malformed events: no ticket, and a ts in seconds; both dead-lettered, the daemon carries on"
rcli XADD "${prefix}events" '*' type opened priority urgent >/dev/null
rcli XADD "${prefix}events" '*' type opened ticket T-1006 ts $((now / 1000)) >/dev/null
sleep_until() { # ms since the demo's start
    left=$(( $1 - ($(date +%s%3N) - now) ))
    [ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
    return 0
}
sleep_until 6000
ctl emit responded T-1003 >/dev/null
echo "   (6 s) T-1003 answered"
sleep_until 12000
ctl emit responded T-1001 >/dev/null
echo "   (12 s) T-1001 answered, after its breach: recovered"
for _ in $(seq 50); do # every notification delivered
    [ "$(rcli HLEN "${prefix}outbox")" = 0 ] && [ "$(rcli XLEN "${prefix}breaches")" -ge 5 ] && break
    sleep 0.1
done
sleep 2.5 # one compliance round after the last outcome

step "slawatchctl tickets --overdue"
ctl tickets --overdue
step "slawatchctl outbox"
ctl outbox
step "${prefix}breaches (XRANGE): warnings, breaches, the recovery"
rcli XRANGE "${prefix}breaches" - + | entries
step "${prefix}events:dead"
rcli XRANGE "${prefix}events:dead" - + | entries
step "slawatchctl explain priority=High"
ctl explain priority=High | head -n 3
step "slawatchctl status"
ctl status
step "slawatchctl report"
ctl report

step "done"
cat <<EOF
   To run it against your own Redis and receivers:
     1. copy conf/slawatch.yaml; set redis.host and port (or unix), and each
        webhook's url (secret_file for signed json, routing_key_file for
        PagerDuty); check it with: $build/slawatchd -c FILE -t
     2. SLAWATCH_CONFIG=FILE make run     # these events, that Redis and receivers
     3. or run it for real: $build/slawatchd -c FILE, and append events with
        XADD <prefix>events * type opened ticket T-1 priority high ...
   The receiver used here is contrib/demo/receiver.c: a model of checking
   X-Slawatch-Signature.
EOF
if [ -t 0 ]; then
    echo
    echo "== slawatchd keeps running; try: $build/slawatchctl -c $cfg emit opened T-1 priority=urgent"
    echo "   Ctrl-C stops it."
    wait "$daemon_pid"
fi
