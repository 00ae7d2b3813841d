#!/usr/bin/env bash
# A fast upload alone and beside slow clients, in one run: what 64 chunk
# PUTs that drip 2 KiB/s each cost an upload that sends as fast as it can.
#
# Each round starts a fresh `tusk serve` (default settings: a 32 MiB
# buffer budget) on an empty data folder and times `tusk upload FILE
# --no-cache` (hashing, check, chunks, complete); then again on a fresh
# server while `bench/drip.py` holds 64 chunk PUTs open, each sending
# 2 KiB/s (128 KiB/s in all) and none of them ever finishing. The ratio
# beside / alone is the cost of the drips: near 1 when slow clients hold
# only the bytes they sent, unbounded when they hold the budget.
#
# Settings (environment):
#   BENCH_SIZE_MIB  file size (64)       BENCH_RUNS   rounds (3)
#   BENCH_DRIPS     slow clients (64)    BENCH_RATE   bytes/s each (2048)
#   BENCH_TUSK      the tusk binary to measure (default: build target/release/tusk)
#   BENCH_WORK      where files go (bench/work)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-64}
runs=${BENCH_RUNS:-3}
drips=${BENCH_DRIPS:-64}
rate=${BENCH_RATE:-2048}
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"
command -v python3 >/dev/null || { echo "bench/fairness.sh needs python3" >&2; exit 1; }

if [ -n "${BENCH_TUSK:-}" ]; then
    tusk=$BENCH_TUSK
else
    echo "building the release binary…" >&2
    (cd "$root" && cargo build --release --quiet -p tusk)
    tusk=$root/target/release/tusk
fi

src=$work/fair-source.bin
test_file "$src" "$size_mib"

dripper=
cleanup() {
    [ -n "$dripper" ] && kill "$dripper" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work/fair-data"
}
trap cleanup EXIT

# One upload to a fresh server, with drips beside it if $1 is "drips";
# prints the seconds.
upload_once() {
    start_server "$tusk" "$work/fair-data"
    if [ "$1" = drips ]; then
        local line out
        exec {out}< <(exec python3 "$root/bench/drip.py" "$url" "$drips" "$rate")
        dripper=$!
        read -r line <&"$out"
        [ "$line" = dripping ] || { echo "the drips did not start" >&2; exit 1; }
    fi
    local t0 t1
    t0=$(now)
    "$tusk" upload "$src" --server "$url" --no-cache >/dev/null
    t1=$(now)
    if [ -n "$dripper" ]; then
        kill -0 "$dripper" || { echo "a drip was answered before the upload ended" >&2; exit 1; }
        kill "$dripper"; wait "$dripper" 2>/dev/null || true; dripper=
    fi
    stop_server "$work/fair-data"
    calc "$t1 - $t0"
}

alone=() beside=()
for run in $(seq 1 "$runs"); do
    alone+=("$(upload_once none)")
    beside+=("$(upload_once drips)")
    echo "run $run: alone $(printf %.2f "${alone[-1]}")s, beside $drips drips $(printf %.2f "${beside[-1]}")s" >&2
done

a=$(median "${alone[@]}") b=$(median "${beside[@]}")
echo
echo "$(uname -srm), $(nproc) cores; ${size_mib} MiB file; $drips drips of $rate B/s; ${runs} rounds; medians."
echo "| what                                   | seconds | × alone |"
echo "|----------------------------------------|---------|---------|"
printf '| %-38s | %7.2f | %7.2f |\n' "tusk upload alone" "$a" 1
printf '| %-38s | %7.2f | %7.2f |\n' "tusk upload beside $drips drips" "$b" "$(calc "$b / $a")"
