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

# start_server TUSK DATA [ARGS...]: a fresh `TUSK serve` on an empty DATA
# folder and a free loopback port, with ARGS added to its command line (e.g.
# --store, --catalog); sets $server_pid and $url once it is listening.
server_pid=
start_server() {
    rm -rf "$2"
    coproc SERVER { exec "$1" serve --listen 127.0.0.1:0 --data "$2" "${@:3}" 2>/dev/null; }
    server_pid=$SERVER_PID
    local line
    read -r line <&"${SERVER[0]}"
    url=$(grep -o 'http://[0-9.:]*' <<<"$line")
}

# server_rss: the running server's peak RSS (VmHWM) in KiB.
server_rss() { awk '/VmHWM/ {print $2}' "/proc/$server_pid/status"; }

# stop_server DATA: stops the server and removes its data folder.
stop_server() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    rm -rf "$1"; sync
}
