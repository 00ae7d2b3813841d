# Helpers shared by the benchmark scripts (sourced, not run).

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# test_file PATH MIB: makes PATH hold MIB MiB of random bytes (kept between
# runs when its size is right) and reads it once into the page cache.
test_file() {
    if [ ! -f "$1" ] || [ "$(stat -c %s "$1")" -ne $(($2 * 1048576)) ]; then
        echo "writing a $2 MiB test file…" >&2
        head -c $(($2 * 1048576)) /dev/urandom > "$1"
    fi
    cat "$1" > /dev/null
}
