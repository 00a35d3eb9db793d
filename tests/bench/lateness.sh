#!/bin/sh
# bench_core again with events.allowed_lateness 2s: breaches must then be
# recorded after deadline + 2 s and within 2 s + 20 ms of it (p99). Run by
# `make bench` after bench_core itself (allowed_lateness 0s).
set -u
exec env BENCH_LATENESS_MS=${BENCH_LATENESS_MS:-2000} "${BUILD:-build}/tests/bench/bench_core" "$@"
