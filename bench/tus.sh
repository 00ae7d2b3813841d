#!/usr/bin/env bash
# tus ingest beside the disk's own limit, in one run: one PATCH of the whole
# file with curl to a fresh `tusk serve`, against `cp` + `sync` of the same
# file.
#
# Each round copies the file with `cp` + `sync` (the baseline: a durable
# copy), then creates a tus upload on an empty data folder and sends the
# file in a single PATCH (`curl --upload-file` streams it from the page
# cache). The PATCH is
# answered once every byte is durable and the file is committed, so the
# time covers the completion as well.
#
# Settings (environment):
#   BENCH_SIZE_MIB  file size (1024)          BENCH_RUNS  rounds (5)
#   BENCH_WORK      where files go (bench/work)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-1024}
runs=${BENCH_RUNS:-5}
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"
command -v curl >/dev/null || { echo "bench/tus.sh needs curl" >&2; exit 1; }

echo "building the release binary…" >&2
(cd "$root" && cargo build --release --quiet -p tusk)
tusk=$root/target/release/tusk

src=$work/tus-source.bin
test_file "$src" "$size_mib"   # every contender reads it from the page cache

cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work/tus-data" "$work/copy.bin"; }
trap cleanup EXIT

# One PATCH of the whole file to a fresh server; prints "seconds rss_kib".
patch_once() {
    start_server "$tusk" "$work/tus-data"
    local base=$url location t0 t1 status rss
    location=$(curl -sS -o /dev/null -D - -X POST "$base/tus/" \
        -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $(stat -c %s "$src")" \
        | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    t0=$(now)
    status=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "$base$location" \
        -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
        -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' \
        --upload-file "$src")
    t1=$(now)
    [ "$status" = 204 ] || { echo "PATCH answered $status" >&2; exit 1; }
    rss=$(server_rss)
    stop_server "$work/tus-data"
    echo "$(calc "$t1 - $t0") $rss"
}

baseline=() patch=() rss=()
for run in $(seq 1 "$runs"); do
    rm -f "$work/copy.bin"; sync
    t0=$(now); cp "$src" "$work/copy.bin"; sync; t1=$(now)
    baseline+=("$(calc "$t1 - $t0")")
    rm -f "$work/copy.bin"; sync
    read -r t r < <(patch_once)
    patch+=("$t"); rss+=("$r")
    echo "run $run: cp+sync $(printf %.2f "${baseline[-1]}")s, tus PATCH $(printf %.2f "$t")s (RSS $((r / 1024)) MiB)" >&2
done

mb=$((size_mib * 1048576))
b=$(median "${baseline[@]}")
row() { printf '| %-34s | %7.2f | %6.1f | %9.2f |\n' "$1" "$2" "$(calc "$mb / $2 / 1000000")" "$(calc "$b / $2")"; }
echo
echo "$(uname -srm), $(nproc) cores; ${size_mib} MiB file; ${runs} rounds; medians."
echo "| what                               | seconds | MB/s   | × cp+sync |"
echo "|------------------------------------|---------|--------|-----------|"
row "cp + sync (baseline)" "$b"
row "tusk: one tus PATCH with curl" "$(median "${patch[@]}")"
echo "server peak RSS: median $(( $(median "${rss[@]}") / 1024 )) MiB"
