#!/usr/bin/env bash
# `tusk upload` as a user runs it, beside the disk's own limit, in one run:
#
#  1. one big file (2 GiB): `tusk upload FILE` to a fresh `tusk serve`,
#     hashing included, and again with its hash already in the client's
#     cache; baseline: `cp` + `sync` of the same file;
#  2. many small files (10,000 of 16 KiB): `tusk upload FOLDER` to a fresh
#     server; baseline: `cp -r` + `sync` of the same folder.
#
# Every upload is durable when acknowledged (chunks and files fsynced,
# catalog committed). Reports medians and ratios to the baselines.
#
# Settings (environment):
#   BENCH_SIZE_MIB  big file size (2048)      BENCH_RUNS   rounds (5)
#   BENCH_FILES     small files (10000)       BENCH_FILE_KIB small file size (16)
#   BENCH_WORK      where files go (bench/work)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-2048}
runs=${BENCH_RUNS:-5}
nfiles=${BENCH_FILES:-10000}
kib=${BENCH_FILE_KIB:-16}
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"

echo "building the release binary…" >&2
(cd "$root" && cargo build --release --quiet -p tusk)
tusk=$root/target/release/tusk

src=$work/source.bin
test_file "$src" "$size_mib"
small=$work/small-$nfiles-$kib
if [ ! -f "$small/.complete" ]; then
    echo "writing $nfiles files of $kib KiB…" >&2
    rm -rf "$small"; mkdir -p "$small"
    python3 - "$small" "$nfiles" "$kib" <<'PY'
import os, sys
d, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    sub = os.path.join(d, f"{i // 1000:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(kib * 1024))
PY
    touch "$small/.complete"
fi
cat "$small"/*/* > /dev/null   # page-cached, as the big file is

cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work/data" "$work/copy.bin" "$work/copy-small" "$work/cli-cache"
}
trap cleanup EXIT

# timed_upload ARGS...: seconds taken by `tusk upload ARGS` to a fresh server.
timed_upload() {
    start_server "$tusk" "$work/data"
    local t0 t1 out
    t0=$(now)
    out=$("$tusk" upload "$@" --server "$url" --json 2>"$work/upload.err") || {
        cat "$work/upload.err" >&2; exit 1; }
    t1=$(now)
    if grep -q '"status":"instant"' <<<"$out"; then echo "unexpected instant upload" >&2; exit 1; fi
    stop_server "$work/data"
    calc "$t1 - $t0"
}

# Fill the hash cache once for the "hash cached" rows.
start_server "$tusk" "$work/data"
"$tusk" upload "$src" --server "$url" --cache-dir "$work/cli-cache" >/dev/null 2>&1
stop_server "$work/data"

base_big=(); full=(); cached=(); base_small=(); smallt=()
for run in $(seq 1 "$runs"); do
    rm -f "$work/copy.bin"; sync
    t0=$(now); cp "$src" "$work/copy.bin"; sync; t1=$(now)
    base_big+=("$(calc "$t1 - $t0")"); rm -f "$work/copy.bin"; sync
    full+=("$(timed_upload "$src" --no-cache)")
    cached+=("$(timed_upload "$src" --cache-dir "$work/cli-cache" --force)")

    rm -rf "$work/copy-small"; sync
    t0=$(now); cp -r "$small" "$work/copy-small"; sync; t1=$(now)
    base_small+=("$(calc "$t1 - $t0")"); rm -rf "$work/copy-small"; sync
    smallt+=("$(timed_upload "$small" --no-cache)")
    printf 'run %d: cp+sync %.2fs, upload %.2fs, upload (hash cached) %.2fs | cp -r+sync %.2fs, %d files %.2fs\n' \
        "$run" "${base_big[-1]}" "${full[-1]}" "${cached[-1]}" "${base_small[-1]}" "$nfiles" "${smallt[-1]}" >&2
done

mb=$((size_mib * 1048576))
b=$(median "${base_big[@]}")
row() { printf '| %-40s | %7.2f | %8.1f MB/s | %9.2f |\n' "$1" "$2" "$(calc "$mb / $2 / 1000000")" "$(calc "$b / $2")"; }
echo
echo "$(uname -srm), $(nproc) cores; $runs rounds; medians."
echo
echo "One file of $size_mib MiB:"
echo "| what                                     | seconds | throughput    | × baseline |"
echo "|------------------------------------------|---------|---------------|-----------|"
row "cp + sync (baseline)" "$b"
row "tusk upload (hash + send)" "$(median "${full[@]}")"
row "tusk upload (hash cached, send)" "$(median "${cached[@]}")"
echo
s=$(median "${base_small[@]}")
srow() { printf '| %-40s | %7.2f | %7.0f files/s | %9.2f |\n' "$1" "$2" "$(calc "$nfiles / $2")" "$(calc "$s / $2")"; }
echo "$nfiles files of $kib KiB:"
echo "| what                                     | seconds | throughput      | × baseline |"
echo "|------------------------------------------|---------|-----------------|-----------|"
srow "cp -r + sync (baseline)" "$s"
srow "tusk upload FOLDER" "$(median "${smallt[@]}")"
