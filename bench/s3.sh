#!/usr/bin/env bash
# An upload through tusk on S3 beside boto3's own multipart upload of the
# same file to the same SeaweedFS, in one run.
#
# Starts PostgreSQL and SeaweedFS with tests/backends (on free loopback
# ports, data under BENCH_WORK), then each round, in alternating order:
#
#  - boto3 `upload_file` of the file into the bucket: a multipart upload of
#    8 MiB parts, as many threads as tusk has chunk streams, path-style
#    addressing; timed in Python around `upload_file` alone; the object is
#    checked (size) and deleted;
#  - a fresh `tusk serve --store s3://uploads/bench-N --catalog
#    postgres://…/bench_N` (a new database per round) receives the same file
#    from the client library (crates/client/examples/bench_upload.rs: check,
#    chunk streams with Chunk-Hash, complete); each chunk is one S3
#    UploadPart, the completion one CompleteMultipartUpload. The client's
#    hashing of the whole file (sha256-4m, every core) is timed apart.
#
# Reports medians, ratios boto3 / tusk (>= 0.8 is the target; above 1, tusk
# is faster), the CPU seconds each side cost (client, tusk server, weed) and
# the server's peak RSS; appends the report to BENCH_RESULTS.
#
# Settings (environment):
#   BENCH_SIZE_MIB  file size (1024)          BENCH_RUNS      rounds (5)
#   BENCH_PARALLEL  chunk streams = boto3 threads (4)
#   BENCH_PART_MIB  boto3's part size (8; tusk's S3 chunk size is 8 MiB)
#   BENCH_WORK      where files and the backends go (bench/work)
#   BENCH_RESULTS   results file (bench/results/DATE-s3.md; empty: none)
#   BENCH_KEEP_FILE keep the test file afterwards (unset: removed)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-1024}
runs=${BENCH_RUNS:-5}
parallel=${BENCH_PARALLEL:-4}
part_mib=${BENCH_PART_MIB:-8}
work=${BENCH_WORK:-$root/bench/work}
results=${BENCH_RESULTS-$root/bench/results/$(date -u +%F)-s3.md}
command="bench/s3.sh"
for v in BENCH_SIZE_MIB BENCH_RUNS BENCH_PARALLEL BENCH_PART_MIB BENCH_WORK; do
    [ -n "${!v:-}" ] && command="$v=${!v} $command"
done
mkdir -p "$work"
die() { echo "bench/s3.sh: $*" >&2; exit 1; }

# --- boto3 in bench/.venv, from requirements-s3.txt (idempotent) ------------
command -v python3 >/dev/null || die "python3 is missing (apt-get install python3 python3-venv)"
venv=$root/bench/.venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
stamp=$venv/.requirements-s3.txt
if ! cmp -s "$root/bench/requirements-s3.txt" "$stamp" ||
    ! "$venv/bin/python" -c 'import boto3.s3.transfer' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$root/bench/requirements-s3.txt" || die "pip install -r bench/requirements-s3.txt failed"
    cp "$root/bench/requirements-s3.txt" "$stamp"
fi
py=$venv/bin/python

# --- PostgreSQL + SeaweedFS, the tusk binaries, the test file ----------------
"$root/tests/backends/setup"
echo "building release binaries…" >&2
(cd "$root" && cargo build --release --quiet -p tusk && cargo build --release --quiet -p tusk-client --example bench_upload)
tusk=$root/target/release/tusk
driver=$root/target/release/examples/bench_upload

backends=$work/s3-backends
src=$work/s3-source.bin
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    "$root/tests/backends/stop" "$backends" || true
    rm -rf "$work/s3-data"
    [ -n "${BENCH_KEEP_FILE:-}" ] || rm -f "$src"
}
trap cleanup EXIT
"$root/tests/backends/start" "$backends" >&2
. "$backends/env"
weed_pid=$(cat "$backends/seaweedfs/pid")
test_file "$src" "$size_mib"   # both contenders read it from the page cache

# The boto3 side. `upload FILE KEY PARALLEL PART_BYTES` prints "seconds
# cpu_seconds"; `clear PREFIX SIZE` checks that PREFIX holds one object of
# SIZE bytes (tusk's blob) and deletes everything under it.
boto_py='
import os, resource, sys, time
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

cmd, args = sys.argv[1], sys.argv[2:]
parallel = int(args[2]) if cmd == "upload" else 4
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["TUSK_TEST_S3_ENDPOINT"],
    region_name=os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(10, parallel)),
)
bucket = os.environ["TUSK_TEST_S3_BUCKET"]

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

if cmd == "upload":
    path, key, part = args[0], args[1], int(args[3])
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                            max_concurrency=parallel, use_threads=True)
    c0, t0 = cpu(), time.perf_counter()
    s3.upload_file(path, bucket, key, Config=config)
    t, c = time.perf_counter() - t0, cpu() - c0
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    assert size == os.path.getsize(path), f"{key} holds {size} bytes"
    s3.delete_object(Bucket=bucket, Key=key)
    print(f"{t:.4f} {c:.2f}")
elif cmd == "clear":
    prefix, size = args[0], int(args[1])
    objs = [o for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in p.get("Contents", [])]
    blobs = [o["Size"] for o in objs if "/blobs/" in o["Key"]]
    assert blobs == [size], f"blobs under {prefix}: {blobs}"
    for o in objs:
        s3.delete_object(Bucket=bucket, Key=o["Key"])
'

field() { grep -o "\"$1\":[0-9.]*" <<<"$2" | cut -d: -f2; }
# cpu_s PID: CPU seconds (user + system) the process has used so far.
tck=$(getconf CLK_TCK)
cpu_s() { awk -v t="$tck" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat"; }

# One boto3 upload; sets b (seconds), bc (boto3's CPU), bw (weed's CPU).
boto_once() {
    local w0 out
    w0=$(cpu_s "$weed_pid")
    out=$("$py" -c "$boto_py" upload "$src" "boto3-$1.bin" "$parallel" $((part_mib * 1048576)))
    bw=$(calc "$(cpu_s "$weed_pid") - $w0")
    read -r b bc <<<"$out"
}

# One upload through a fresh server on a fresh database; sets t (transfer
# seconds), h (hashing seconds), r (server peak RSS, KiB) and the CPU seconds
# of the client (cc, hashing included), the server (sc) and weed (tw). Runs
# in this shell, not a subshell: the next upload starts once this one's
# server is stopped and its objects deleted.
tusk_once() {
    local db=bench_$1 catalog w0 result
    PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$TUSK_TEST_POSTGRES" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    catalog=${TUSK_TEST_POSTGRES/\/postgres\?//$db?}
    start_server "$tusk" "$work/s3-data" --store "s3://$TUSK_TEST_S3_BUCKET/bench-$1" \
        --s3-endpoint "$TUSK_TEST_S3_ENDPOINT" --catalog "$catalog"
    [ -n "$url" ] || die "tusk serve did not start on S3 (run it by hand to see why)"
    w0=$(cpu_s "$weed_pid")
    # The driver's own CPU time, from bash's `times` (children: user, system).
    result=$("$driver" "$url" "$src" "$parallel" chunk-hash; times)
    tw=$(calc "$(cpu_s "$weed_pid") - $w0")
    r=$(server_rss); sc=$(cpu_s "$server_pid")
    cc=$(tail -1 <<<"$result" | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.2f", s }')
    t=$(field transfer_s "$result"); h=$(field hash_s "$result")
    [ -n "$t" ] && [ -n "$h" ] || die "the tusk upload of round $1 failed"
    stop_server "$work/s3-data"
    "$py" -c "$boto_py" clear "bench-$1/" $((size_mib * 1048576))
    psql -q "$TUSK_TEST_POSTGRES" -c "DROP DATABASE $db" >/dev/null
}

load0=$(cut -d' ' -f1 /proc/loadavg)
boto=(); transfer=(); total=(); rss=(); lines=()
boto_cpu=(); boto_weed=(); tusk_ccpu=(); tusk_scpu=(); tusk_weed=()
for run in $(seq 1 "$runs"); do
    if ((run % 2)); then order="boto3 tusk"; else order="tusk boto3"; fi
    for who in $order; do
        if [ "$who" = boto3 ]; then
            boto_once "$run"
            boto+=("$b"); boto_cpu+=("$bc"); boto_weed+=("$bw")
        else
            tusk_once "$run"
            transfer+=("$t"); total+=("$(calc "$t + $h")"); rss+=("$r")
            tusk_ccpu+=("$cc"); tusk_scpu+=("$sc"); tusk_weed+=("$tw")
        fi
    done
    line="run $run ($order): boto3 $(printf %.2f "$b")s (CPU: boto3 $bc s, weed $bw s)"
    line+=", tusk $(printf %.2f "$t")s + hashing $(printf %.2f "$h")s"
    line+=" (CPU: client $cc s, server $sc s, weed $tw s; server RSS $((r / 1024)) MiB)"
    echo "$line" >&2
    lines+=("$line")
done
load1=$(cut -d' ' -f1 /proc/loadavg)

mb=$((size_mib * 1048576))
bm=$(median "${boto[@]}")
row() { printf '| %-40s | %7.2f | %6.1f | %12.2f |\n' "$1" "$2" "$(calc "$mb / $2 / 1000000")" "$(calc "$bm / $2")"; }
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
dev=$(df --output=source "$work" | tail -1)
fs=$(df --output=fstype "$work" 2>/dev/null | tail -1)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
versions="SeaweedFS $("$root/tests/backends/.venv/bin/weed" version 2>/dev/null | awk '/^version/ {print $3; exit}')"
versions+=" (weed mini), $(psql -At "$TUSK_TEST_POSTGRES" -c 'SHOW server_version' | cut -d' ' -f1 | sed 's/^/PostgreSQL /') (fsync off)"
versions+=", $("$py" -c 'import sys, boto3, botocore, s3transfer; print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, s3transfer {s3transfer.__version__}, Python {sys.version.split()[0]}")')"
rev=$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown)

report() {
    echo "Machine: $(uname -srm), $(nproc) cores ($cpu), $mem, $fs on $dev; load average (1 min) $load0 before, $load1 after."
    echo "Versions: $versions; tusk $rev."
    echo "Command: \`$command\`"
    echo
    echo '```'
    printf '%s\n' "${lines[@]}"
    echo
    echo "${size_mib} MiB file (page-cached); ${runs} rounds, order alternating; $parallel streams of ${part_mib} MiB parts on both sides; medians."
    echo "| what                                     | seconds | MB/s   | boto3 / tusk |"
    echo "|------------------------------------------|---------|--------|--------------|"
    row "boto3 upload_file (baseline)" "$bm"
    row "tusk: upload (transfer only)" "$(median "${transfer[@]}")"
    row "tusk: hash the file + upload" "$(median "${total[@]}")"
    echo "CPU seconds per upload (medians): boto3 $(median "${boto_cpu[@]}") + weed $(median "${boto_weed[@]}");" \
        "tusk client $(median "${tusk_ccpu[@]}") (hashing included) + server $(median "${tusk_scpu[@]}") + weed $(median "${tusk_weed[@]}")"
    peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
    echo "tusk server peak RSS: median $(( $(median "${rss[@]}") / 1024 )) MiB, max $((peak / 1024)) MiB"
    echo '```'
}
echo
report
if [ -n "$results" ]; then
    [ -f "$results" ] || printf '# bench/s3.sh — %s\n' "$(date -u +%F)" >"$results"
    { echo; echo "## Run at $(date -u +%H:%M) UTC"; echo; report; } >>"$results"
    echo "appended to $results" >&2
fi
