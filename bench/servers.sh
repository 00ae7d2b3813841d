# The tus servers bench/run measures (sourced, not run; needs lib.sh).
#
# start_tus KIND DATA: a fresh server of KIND on an empty DATA folder and a
# free loopback port; sets $server_pid and $endpoint (its tus creation URL)
# once it answers. Kinds:
#   tusk          tusk serve, as shipped (fsyncs before it acknowledges)
#   tusk-nosync   tusk serve --no-fsync
#   rustus        rustus with its file storage, as shipped (no fsync)
#   rustus-fsync  the same with --force-fsync
#   tus-node      @tus/server + @tus/file-store (no fsync)
# stop_tus DATA stops it and removes DATA.

# What each kind does before it acknowledges bytes, for the tables.
declare -A durability=(
    [tusk]="fsync (data + catalog)"
    [tusk-nosync]="none (--no-fsync)"
    [rustus]="none"
    [rustus-fsync]="fsync of data (--force-fsync)"
    [tus-node]="none"
)
declare -A label=(
    [tusk]="tusk"
    [tusk-nosync]="tusk --no-fsync"
    [rustus]="rustus"
    [rustus-fsync]="rustus --force-fsync"
    [tus-node]="@tus/server"
)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_tus URL: polls until the tus server at URL answers OPTIONS (or fails
# after 30 s, or as soon as the server process is gone).
wait_tus() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null -X OPTIONS -H 'Tus-Resumable: 1.0.0' "$1" 2>/dev/null; do
        kill -0 "$server_pid" 2>/dev/null || { echo "the server exited before it answered" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { echo "no answer from $1 in 30 s" >&2; exit 1; }
        sleep 0.05
    done
}

# start_line CMD...: starts CMD in the background with its stdout in a
# file, waits for its first line (or fails after 30 s, or as soon as CMD is
# gone) and sets $started to the address in it.
start_line() {
    local out=$work/server.out line= deadline=$((SECONDS + 30))
    : >"$out"   # emptied here: the child may open it later than we read it
    "$@" >>"$out" 2>>"$work/server.log" &
    server_pid=$!
    until line=$(head -n 1 "$out") && [ -n "$line" ]; do
        kill -0 "$server_pid" 2>/dev/null || { echo "$1 did not start (see $work/server.log)" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { echo "$1 printed nothing in 30 s" >&2; exit 1; }
        sleep 0.02
    done
    started=$(grep -o 'http://[0-9.:]*[^ ]*' <<<"$line")
}

start_tus() {
    local kind=$1 data=$2 port
    rm -rf "$data"; mkdir -p "$data"
    case $kind in
    tusk)
        start_line "$tusk" serve --listen 127.0.0.1:0 --data "$data"
        endpoint=$started/tus/ ;;
    tusk-nosync)
        start_line "$tusk" serve --listen 127.0.0.1:0 --data "$data" --no-fsync
        endpoint=$started/tus/ ;;
    rustus | rustus-fsync)
        port=$(free_port)
        local args=(--host 127.0.0.1 --port "$port" --data-dir "$data" --info-dir "$data"
            --max-body-size $((1 << 40)) --log-level error)
        [ "$kind" = rustus-fsync ] && args+=(--force-fsync true)
        "$rustus" "${args[@]}" >>"$work/server.log" 2>&1 &
        server_pid=$!
        endpoint=http://127.0.0.1:$port/files/ ;;
    tus-node)
        start_line node "$root/bench/peers/tus-node-server.mjs" "$data"
        endpoint=$started ;;
    *) echo "unknown server kind $kind" >&2; exit 1 ;;
    esac
    wait_tus "$endpoint"
}

stop_tus() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    rm -rf "$1"; sync
}

# tus_create ENDPOINT SIZE: creates an upload; prints its absolute URL.
tus_create() {
    local location
    location=$(curl -fsS -o /dev/null -D - -X POST "$1" -H 'Tus-Resumable: 1.0.0' \
        -H "Upload-Length: $2" -H 'Upload-Metadata: filename YmVuY2guYmlu' \
        | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    case $location in
    http*) echo "$location" ;;
    /*) echo "$(grep -o '^http://[^/]*' <<<"$1")$location" ;;
    *) echo "no Location in the creation answer from $1" >&2; return 1 ;;
    esac
}

# tus_send URL FILE: the whole FILE in one PATCH; fails unless it is 204.
tus_send() {
    local status
    status=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "$1" \
        -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
        -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' \
        --upload-file "$2")
    [ "$status" = 204 ] || { echo "PATCH $1 answered $status" >&2; return 1; }
}
