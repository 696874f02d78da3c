#!/usr/bin/env bash
# Start with REVOKED revoked certificates: from exec to /readyz 200 (polled
# on the metrics listener every 10 ms), a SQLite node and a PostgreSQL node,
# each started from its revocation set snapshot (written by the previous
# run's graceful stop or its start) and, as the reference, with the
# snapshot removed so that the whole set is read from the database. Target:
# ≤ 1 s from the snapshot, on both backends.
# ROUNDS rounds (default 3); in each, the two ways alternate in order
# (snapshot first in odd rounds), each round's ratio printed. Every node is
# pinned to core 0 (as revocation.sh's start figure), PostgreSQL is not. The
# rows are seeded behind the server's back (seed_revoked.py /
# seed_revoked_pg.py, server stopped): the first start after seeding must
# refuse the older snapshot (the revoked count does not match the log) —
# printed as "after seeding".
# Each start also finds one revocation committed while the node was down
# (`shomei cert revoke`, one demo user per round while they last): the
# snapshot is topped up from the log, and that partition's CRL is signed
# anew while the others are served as kept at the stop (how many, printed).
# Usage: [ROUNDS=3] [PREBUILT=1] bench/start.sh [revoked]   (the issue's: 1000000)
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
REVOKED=${1:-1000000}
ROUNDS=${ROUNDS:-3}
need curl:curl python3:python3
build_shomei -p shomei
NAME="bench_start_$$"
psql "$SHOMEI_TEST_DATABASE_URL" -q -c "CREATE DATABASE $NAME"
URL="${SHOMEI_TEST_DATABASE_URL%/*}/$NAME"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# node_args sqlite|pg: the data directory and the arguments of that node.
# Each node keeps its PKI listener's port from start to start, as a bank's
# node keeps its CRL URLs: the CRLs kept at a stop name it, and are served
# again at the next start when nothing was revoked into their partition.
node_dir() { echo "$BENCH_TMP/$1"; }
db_args() {
    if [ "$1" = pg ]; then echo "--database-url $URL"; fi
}
declare -A PKI_PORT=([sqlite]=$(free_port) [pg]=$(free_port))
node_args() {
    echo "$(db_args "$1") --pki-listen 127.0.0.1:${PKI_PORT[$1]}"
}

# start_ready sqlite|pg: starts the node; sets READY_MS (exec to its first
# /readyz 200) and NODE_PID.
start_ready() {
    local dir port t0 t1
    dir=$(node_dir "$1")
    port=$(free_port)
    t0=$(date +%s%N)
    # shellcheck disable=SC2046
    taskset -c 0 "$SHOMEI" serve --demo --data-dir "$dir" --listen 127.0.0.1:0 \
        --metrics-listen "127.0.0.1:$port" $(node_args "$1") >>"$dir.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    for _ in $(seq 1 12000); do
        if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null | grep -q 200; then
            t1=$(date +%s%N)
            READY_MS=$(((t1 - t0) / 1000000))
            return
        fi
        kill -0 "$NODE_PID" 2>/dev/null || { tail -20 "$dir.log" >&2; echo "node $1 exited" >&2; exit 1; }
        sleep 0.01
    done
    echo "node $1 not ready after 120 s" >&2
    exit 1
}

# stop_node: a graceful stop (SIGTERM), waited for.
stop_node() {
    kill -TERM "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null || true
}

# revoke_one sqlite|pg: the operator revokes one demo user's certificate
# while the node is down (hanakodt, then the others that have one).
WHO=(hanakodt tarodt hottojr01 hottojr02)
declare -A REVOKED_ONES
revoke_one() {
    local i=${REVOKED_ONES[$1]:-0}
    [ "$i" -lt ${#WHO[@]} ] || return 0
    # shellcheck disable=SC2046
    "$SHOMEI" cert revoke --login-id "${WHO[$i]}" --reason key-compromise --data-dir "$(node_dir "$1")" \
        $(db_args "$1") >/dev/null
    REVOKED_ONES[$1]=$((i + 1))
}

# The data directories, then the rows seeded with each node stopped.
for b in sqlite pg; do
    start_ready "$b"
    stop_node
done
python3 "$ROOT/bench/seed_revoked.py" "$(node_dir sqlite)/shomei.db" "$REVOKED"
python3 "$ROOT/bench/seed_revoked_pg.py" "$URL" "$REVOKED"
declare -A SEEDED
for b in sqlite pg; do
    start_ready "$b"
    SEEDED[$b]=$READY_MS
    grep -q "revocation set snapshot not used" "$(node_dir "$b").log" ||
        { echo "$b: the snapshot from before seeding was used" >&2; exit 1; }
    stop_node
done

# start_way sqlite|pg snapshot|database: one start of that way; sets WAY_MS.
start_way() {
    local b=$1 way=$2 dir
    dir=$(node_dir "$b")
    [ "$way" = snapshot ] || rm -f "$dir/revocation-set.snapshot"
    revoke_one "$b"
    : >"$dir.log"
    start_ready "$b"
    if [ "$way" = snapshot ]; then
        grep -q "revocation set loaded from its snapshot" "$dir.log" ||
            { tail -20 "$dir.log" >&2; echo "$b: not started from the snapshot" >&2; exit 1; }
    fi
    stop_node
    WAY_MS=$READY_MS
    # How many partitions' CRLs were served as kept (the others, and the
    # one the revocation made while down went into, were signed).
    WAY_KEPT=$(grep -o 'kept CRL copies served again served=[0-9]*' "$dir.log" | tail -1 | sed 's/.*=//')
}

declare -A SUM
echo "Start with $REVOKED revoked, exec -> /readyz 200 (ms), node on core 0; $ROUNDS rounds" >&2
for r in $(seq 1 "$ROUNDS"); do
    for b in sqlite pg; do
        if [ $((r % 2)) = 1 ]; then
            start_way "$b" snapshot; s=$WAY_MS; sk=$WAY_KEPT
            start_way "$b" database; d=$WAY_MS; dk=$WAY_KEPT
        else
            start_way "$b" database; d=$WAY_MS; dk=$WAY_KEPT
            start_way "$b" snapshot; s=$WAY_MS; sk=$WAY_KEPT
        fi
        SUM[$b.s]=$((${SUM[$b.s]:-0} + s))
        SUM[$b.d]=$((${SUM[$b.d]:-0} + d))
        awk -v r="$r" -v b="$b" -v s="$s" -v d="$d" -v sk="${sk:-0}" -v dk="${dk:-0}" 'BEGIN {
            printf "  round %d %-6s from snapshot %6d ms   from database %6d ms   %.2f×   %s   (CRLs served as kept: %d, %d)\n",
                r, b, s, d, s / d, (s <= 1000 ? "≤ 1 s: met" : "> 1 s: missed"), sk, dk }'
    done
done
for b in sqlite pg; do
    awk -v b="$b" -v s="${SUM[$b.s]}" -v d="${SUM[$b.d]}" -v n="$ROUNDS" -v seeded="${SEEDED[$b]}" 'BEGIN {
        printf "%-6s mean: from snapshot %6.0f ms, from database %6.0f ms (%.2f×); after seeding (snapshot refused) %d ms; target ≤ 1000 ms from the snapshot\n",
            b, s / n, d / n, s / d, seeded }'
done
