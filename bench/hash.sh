#!/usr/bin/env bash
# `tusk hash` beside `openssl dgst -sha256` of the same page-cached file, in
# one run: the content hash (sha256-4m) is SHA-256 over 4 MiB blocks that
# are independent, so it runs on every core, where a plain SHA-256 cannot.
# Target: tusk hash at 1.7x openssl's speed or better on 2 cores.
#
# Settings (environment):
#   BENCH_SIZE_MIB  file size (2048)     BENCH_RUNS  rounds (5)
#   BENCH_WORK      where the file goes (bench/work)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
size_mib=${BENCH_SIZE_MIB:-2048}
runs=${BENCH_RUNS:-5}
work=${BENCH_WORK:-$root/bench/work}
mkdir -p "$work"
command -v openssl >/dev/null || { echo "bench/hash.sh needs openssl" >&2; exit 1; }

echo "building the release binary…" >&2
(cd "$root" && cargo build --release --quiet -p tusk)
tusk=$root/target/release/tusk

src=$work/source.bin
test_file "$src" "$size_mib"   # every contender reads it from the page cache


# The hash is checked once against an independent computation (Python).
expected=$(python3 - "$src" <<'PY'
import hashlib, sys
outer = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(4 * 1024 * 1024), b""):
        outer.update(hashlib.sha256(block).digest())
print("sha256-4m:" + outer.hexdigest())
PY
)
got=$("$tusk" hash "$src" | cut -d' ' -f1)
[ "$got" = "$expected" ] || { echo "tusk hash gave $got, Python gives $expected" >&2; exit 1; }

t_tusk=() t_ssl=() ratios=()
for r in $(seq "$runs"); do
    a=$(now); "$tusk" hash "$src" > /dev/null; b=$(now)
    openssl dgst -sha256 "$src" > /dev/null; c=$(now)
    tt=$(calc "$b - $a"); ts=$(calc "$c - $b")
    t_tusk+=("$tt"); t_ssl+=("$ts"); ratios+=("$(calc "$ts / $tt")")
    echo "round $r: tusk hash ${tt}s, openssl ${ts}s" >&2
done

mt=$(median "${t_tusk[@]}"); ms=$(median "${t_ssl[@]}"); mr=$(median "${ratios[@]}")
mbs() { calc "$size_mib * 1.048576 / $1"; }
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(openssl version)"
echo "${size_mib} MiB page-cached file, ${runs} rounds alternating; medians."
echo
printf '| %-28s | %7s | %7s |\n' what seconds MB/s
printf '|%s|%s|%s|\n' ------------------------------ --------- ---------
printf '| %-28s | %7.2f | %7.0f |\n' "tusk hash (sha256-4m)" "$mt" "$(mbs "$mt")"
printf '| %-28s | %7.2f | %7.0f |\n' "openssl dgst -sha256" "$ms" "$(mbs "$ms")"
echo
echo "tusk hash / openssl: $(calc "$ms / $mt" | xargs printf '%.2f')x (median of per-round ratios $(printf '%.2f' "$mr")x); target >= 1.7x."
