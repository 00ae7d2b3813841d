#!/usr/bin/env bash
# Upload throughput of the JSON API beside the disk's own limit, in one run.
#
# For each round: `cp` + `sync` of the file (the baseline), then a fresh
# `tusk serve` receives the same file through the JSON API with 4 parallel
# chunk streams (every chunk fsynced before it is acknowledged). Reports
# medians, the ratio to the baseline, and the server's peak RSS (VmHWM).
#
# Settings (environment): BENCH_SIZE_MIB (2048), BENCH_RUNS (5),
# BENCH_PARALLEL (4), BENCH_WORK (bench/work: put it on the disk to test).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${BENCH_SIZE_MIB:-2048}
runs=${BENCH_RUNS:-5}
parallel=${BENCH_PARALLEL:-4}
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"

echo "building release binaries…" >&2
(cd "$root" && cargo build --release --quiet -p tusk && cargo build --release --quiet -p tusk-client --example bench_upload)
tusk=$root/target/release/tusk
driver=$root/target/release/examples/bench_upload

src=$work/source.bin
if [ ! -f "$src" ] || [ "$(stat -c %s "$src")" -ne $((size_mib * 1048576)) ]; then
    echo "writing a ${size_mib} MiB test file…" >&2
    head -c $((size_mib * 1048576)) /dev/urandom > "$src"
fi
cat "$src" > /dev/null   # both contenders read it from the page cache

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work/data" "$work/copy.bin"; }
trap cleanup EXIT

baseline=() transfer=() total=() rss=()
for run in $(seq 1 "$runs"); do
    rm -f "$work/copy.bin"; sync
    t0=$(now); cp "$src" "$work/copy.bin"; sync; t1=$(now)
    baseline+=("$(calc "$t1 - $t0")")
    rm -f "$work/copy.bin"; sync

    rm -rf "$work/data"
    coproc SERVER { exec "$tusk" serve --listen 127.0.0.1:0 --data "$work/data" 2>/dev/null; }
    server_pid=$SERVER_PID
    read -r line <&"${SERVER[0]}"
    url=$(grep -o 'http://[0-9.:]*' <<<"$line")
    result=$("$driver" "$url" "$src" "$parallel")
    rss+=("$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")")
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    transfer+=("$(grep -o '"transfer_s":[0-9.]*' <<<"$result" | cut -d: -f2)")
    hash_s=$(grep -o '"hash_s":[0-9.]*' <<<"$result" | cut -d: -f2)
    total+=("$(calc "${transfer[-1]} + $hash_s")")
    printf 'run %d: cp+sync %.2fs, tusk transfer %.2fs (+ hashing %.2fs), server peak RSS %d KiB\n' \
        "$run" "${baseline[-1]}" "${transfer[-1]}" "$hash_s" "${rss[-1]}" >&2
    sync
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mb=$((size_mib * 1048576))
b=$(median "${baseline[@]}"); t=$(median "${transfer[@]}"); a=$(median "${total[@]}")
r=$(median "${rss[@]}"); rmax=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
cat <<TABLE

$(uname -srm), $(nproc) cores; ${size_mib} MiB file; ${runs} runs; medians.
| what                                   | seconds | MB/s   | × cp+sync |
|----------------------------------------|---------|--------|-----------|
| cp + sync (baseline)                   | $(printf '%7.2f | %6.1f | %9.2f' "$b" "$(calc "$mb/$b/1000000")" 1) |
| tusk JSON API, $parallel streams (transfer)     | $(printf '%7.2f | %6.1f | %9.2f' "$t" "$(calc "$mb/$t/1000000")" "$(calc "$b/$t")") |
| tusk, hashing + transfer               | $(printf '%7.2f | %6.1f | %9.2f' "$a" "$(calc "$mb/$a/1000000")" "$(calc "$b/$a")") |
server peak RSS: median $((r / 1024)) MiB, max $((rmax / 1024)) MiB
TABLE
