#!/usr/bin/env bash
# Upload throughput of the JSON API beside the disk's own limit, in one run.
#
# Each round copies the file with `cp` + `sync` (the baseline: a durable
# copy), then, for each per-chunk check, starts a fresh `tusk serve` on an
# empty data folder and uploads the same file through the JSON API with
# parallel chunk streams (every chunk fsynced before it is acknowledged).
# Reports medians, ratios to the baseline, and the server's peak RSS.
#
# Settings (environment):
#   BENCH_SIZE_MIB  file size (2048)          BENCH_RUNS      rounds (5)
#   BENCH_PARALLEL  chunk streams (4)         BENCH_WORK      where files go (bench/work)
#   BENCH_CHECKS    per-chunk checks to compare ("chunk-hash content-digest";
#                   also "none")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-2048}
runs=${BENCH_RUNS:-5}
parallel=${BENCH_PARALLEL:-4}
checks=(${BENCH_CHECKS:-chunk-hash content-digest})
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"

echo "building release binaries…" >&2
(cd "$root" && cargo build --release --quiet -p tusk && cargo build --release --quiet -p tusk-client --example bench_upload)
tusk=$root/target/release/tusk
driver=$root/target/release/examples/bench_upload

src=$work/source.bin
test_file "$src" "$size_mib"   # every contender reads it from the page cache

field() { grep -o "\"$1\":[0-9.]*" <<<"$2" | cut -d: -f2; }

cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work/data" "$work/copy.bin"; }
trap cleanup EXIT

# One upload through a fresh server; prints "transfer_s hash_s rss_kib".
upload_once() {
    start_server "$tusk" "$work/data"
    local result rss
    result=$("$driver" "$url" "$src" "$parallel" "$1")
    rss=$(server_rss)
    stop_server "$work/data"
    echo "$(field transfer_s "$result") $(field hash_s "$result") $rss"
}

declare -A transfer total rss
baseline=()
for run in $(seq 1 "$runs"); do
    rm -f "$work/copy.bin"; sync
    t0=$(now); cp "$src" "$work/copy.bin"; sync; t1=$(now)
    baseline+=("$(calc "$t1 - $t0")")
    rm -f "$work/copy.bin"; sync
    report="run $run: cp+sync $(printf %.2f "${baseline[-1]}")s"
    for check in "${checks[@]}"; do
        read -r t h r < <(upload_once "$check")
        transfer[$check]+="$t "; total[$check]+="$(calc "$t + $h") "; rss[$check]+="$r "
        report+=", $check $(printf %.2f "$t")s (+ hashing $(printf %.2f "$h")s, RSS $((r / 1024)) MiB)"
    done
    echo "$report" >&2
done

mb=$((size_mib * 1048576))
b=$(median "${baseline[@]}")
row() { printf '| %-44s | %7.2f | %6.1f | %9.2f |\n' "$1" "$2" "$(calc "$mb / $2 / 1000000")" "$(calc "$b / $2")"; }
echo
echo "$(uname -srm), $(nproc) cores; ${size_mib} MiB file; ${runs} rounds; $parallel chunk streams; medians."
echo "| what                                         | seconds | MB/s   | × cp+sync |"
echo "|----------------------------------------------|---------|--------|-----------|"
row "cp + sync (baseline)" "$b"
for check in "${checks[@]}"; do
    row "tusk ($check): upload" "$(median ${transfer[$check]})"
    row "tusk ($check): hash the file + upload" "$(median ${total[$check]})"
done
for check in "${checks[@]}"; do
    peak=$(printf '%s\n' ${rss[$check]} | sort -n | tail -1)
    echo "server peak RSS ($check): median $(( $(median ${rss[$check]}) / 1024 )) MiB, max $((peak / 1024)) MiB"
done
