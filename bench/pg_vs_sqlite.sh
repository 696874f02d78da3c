#!/usr/bin/env bash
# Server CPU, a PostgreSQL node beside a SQLite node, in one run:
#  1. per certificate issuance (EST renewals by shomei-bench, as in
#     issuance.sh: mutual-TLS handshake + issue + DB + 操作履歴 + revocation
#     of the superseded certificate), target PostgreSQL ≤ 1.5× SQLite;
#  2. per password login (bench/logins.py: form, Argon2id, session), same
#     target;
#  3. per TLS full handshake with a client certificate (openssl s_time -new,
#     as in handshake.sh) with REVOKED certificates revoked (seeded, servers
#     stopped, by seed_revoked.py and seed_revoked_pg.py), target ≤ 1.1×.
# Server CPU = utime+stime of the shomei process (/proc/PID/stat) over the
# operations, divided by their number. For PostgreSQL the database's own
# CPU is shown too: all its processes, live ones and the reaped (the
# postmaster's cutime+cstime), over the same interval; "shomei + postgres"
# is the node's whole cost. Both nodes on core 0 (measured one after the
# other), load on core 1; a throw-away PostgreSQL (scripts/postgres: fsync
# and synchronous_commit off) — SQLite runs with DURABILITY (default full,
# an fsync per commit; normal: as issuance.sh). Loopback only, bounded.
# Each figure sums ROUNDS rounds (default 3), the two nodes measured in
# alternating order, and shows each round's ratio to show the noise.
# SECTIONS (default "1 2 3") chooses the figures measured, e.g. SECTIONS=1
# for issuance alone. SHOMEI_PG (default SHOMEI) is the binary of the PG
# node, to set two builds side by side on PostgreSQL in one run.
# Usage: [DURABILITY=normal] [ROUNDS=3] [SECTIONS=…] bench/pg_vs_sqlite.sh [seconds] [logins] [revoked]
#        (the issue's figures: 10 200 1000000)
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
LOGINS=${2:-200}
REVOKED=${3:-1000000}
ROUNDS=${ROUNDS:-3}
DURABILITY=${DURABILITY:-full}
SECTIONS=" ${SECTIONS:-1 2 3} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
need openssl:openssl curl:curl python3:python3
build_shomei
build_shomei -p shomei-bench
LOAD="$ROOT/target/release/shomei-bench"
NAME="bench_cpu_$$"
psql "$SHOMEI_TEST_DATABASE_URL" -q -c "CREATE DATABASE $NAME"
URL="${SHOMEI_TEST_DATABASE_URL%/*}/$NAME"
PGDATA="$(dirname "$SHOMEI_TEST_PG_RESTART")/data"
printf '[settings]\ndurability = "%s"\n' "$DURABILITY" >"$BENCH_TMP/sqlite.toml"

# pg_ticks: CPU ticks of the whole PostgreSQL cluster so far.
pg_ticks() {
    local pm
    pm=$(head -1 "$PGDATA/postmaster.pid")
    { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
      for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true; done
    } | awk '{s += $1} END {print s}'
}

# start_node sqlite|pg: (re)starts that node; sets S_* or P_* from start_shomei.
start_node() {
    if [ "$1" = sqlite ]; then
        start_shomei "$BENCH_TMP/s" 0 --config "$BENCH_TMP/sqlite.toml"
        S_PID=$SHOMEI_PID S_PORTAL=$PORTAL S_CERT=$CERT
    else
        SHOMEI="${SHOMEI_PG:-$SHOMEI}" start_shomei "$BENCH_TMP/p" 0 --database-url "$URL"
        P_PID=$SHOMEI_PID P_PORTAL=$PORTAL P_CERT=$CERT
    fi
}
stop_node() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}
start_node sqlite
start_node pg

# Per node: ichirodt enrolled for the handshakes; six renewal chains (two
# enrolled now, four from the demo data's PKCS#12 files).
declare -A CHAINS
for n in s p; do
    d="$BENCH_TMP/$n"
    PORTAL=$([ $n = s ] && echo "$S_PORTAL" || echo "$P_PORTAL")
    for who in ichirodt jirodt sachikodt; do enroll "$d" "$who" "$d.$who"; done
    CHAINS[$n]="$d.jirodt.key:$d.jirodt.crt $d.sachikodt.key:$d.sachikodt.crt"
    for who in hanakodt tarodt hottojr01 hottojr02; do
        openssl pkcs12 -in "$d/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nodes -nocerts 2>/dev/null |
            openssl pkey -out "$d.$who.key"
        openssl pkcs12 -in "$d/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nokeys -clcerts 2>/dev/null |
            openssl x509 -out "$d.$who.crt"
        CHAINS[$n]+=" $d.$who.key:$d.$who.crt"
    done
done

# measure PID WITH_PG COMMAND…: runs COMMAND (which pins itself to core 1);
# prints its first output field (the operations), then shomei's and
# postgres's ticks over it.
measure() {
    local pid=$1 with_pg=$2 s0 s1 p0=0 p1=0 ops
    shift 2
    s0=$(cpu_ticks "$pid")
    [ "$with_pg" = 1 ] && p0=$(pg_ticks)
    ops=$("$@" | awk '{print $1}')
    s1=$(cpu_ticks "$pid")
    [ "$with_pg" = 1 ] && p1=$(pg_ticks)
    echo "$ops $((s1 - s0)) $((p1 - p0))"
}
USERS=(hanakodt tarodt jirodt ichirodt sachikodt hottojr01 hottojr02)
# The operations of one kind on node N (s or p); each prints the count first.
issue() { # shellcheck disable=SC2086 # the chains are words
    taskset -c 1 "$LOAD" renew "$BENCH_TMP/$1/ca/root-ca.crt" "127.0.0.1:${2##*:}" "$SECS" ${CHAINS[$1]}
}
login() { taskset -c 1 python3 "$ROOT/bench/logins.py" "$3" "$BENCH_TMP/$1/ca/root-ca.crt" "$LOGINS" 4 "${USERS[@]}"; }
handshake() { # 4 openssl s_time -new clients with ichirodt's certificate
    local outs=() i total=0 n
    for i in 1 2 3 4; do
        taskset -c 1 openssl s_time -connect "localhost:${2##*:}" -new -time "$SECS" -cert "$BENCH_TMP/$1.ichirodt.crt" \
            -key "$BENCH_TMP/$1.ichirodt.key" -CAfile "$BENCH_TMP/$1/ca/root-ca.crt" >"$BENCH_TMP/st.$i" 2>&1 &
        outs+=($!)
    done
    wait "${outs[@]}"
    for i in 1 2 3 4; do
        n=$(grep -o '^[0-9]* connections in' "$BENCH_TMP/st.$i" | head -1 | awk '{print $1}')
        total=$((total + ${n:-0}))
    done
    echo "$total"
}
# rounds KIND: ROUNDS rounds, the nodes' order alternating (noise on the
# shared core hits both alike); sets TOTAL (sums) and PER_ROUND (ratios).
rounds() {
    local kind=$1 r n pid url port with_pg ops t pg
    declare -gA TOTAL=([s_n]=0 [s_t]=0 [p_n]=0 [p_t]=0 [p_pg]=0)
    PER_ROUND="" PER_ROUND_PG=""
    for r in $(seq 1 "$ROUNDS"); do
        local order=(s p) rs rp
        [ $((r % 2)) = 0 ] && order=(p s)
        for n in "${order[@]}"; do
            if [ "$n" = s ]; then pid=$S_PID url=$S_CERT port=$S_PORTAL with_pg=0
            else pid=$P_PID url=$P_CERT port=$P_PORTAL with_pg=1; fi
            read -r ops t pg < <(measure "$pid" "$with_pg" "$kind" "$n" "$url" "$port")
            TOTAL[${n}_n]=$((TOTAL[${n}_n] + ops))
            TOTAL[${n}_t]=$((TOTAL[${n}_t] + t))
            [ "$n" = p ] && TOTAL[p_pg]=$((TOTAL[p_pg] + pg))
            if [ "$n" = s ]; then rs="$ops $t"; else rp="$ops $t $pg"; fi
        done
        PER_ROUND+=$(awk -v s="$rs" -v p="$rp" 'BEGIN { split(s, a); split(p, b); printf " %.2f", (b[2] / b[1]) / (a[2] / a[1]) }')
        PER_ROUND_PG+=$(awk -v s="$rs" -v p="$rp" 'BEGIN { split(s, a); split(p, b); printf " %.2f", ((b[2] + b[3]) / b[1]) / (a[2] / a[1]) }')
    done
}
row() { # WHAT TARGET (from TOTAL and PER_ROUND)
    awk -v w="$1" -v sn="${TOTAL[s_n]}" -v st="${TOTAL[s_t]}" -v pn="${TOTAL[p_n]}" -v pt="${TOTAL[p_t]}" \
        -v pg="${TOTAL[p_pg]}" -v tg="$2" -v hz="$TICK" -v pr="$PER_ROUND" -v prg="$PER_ROUND_PG" 'BEGIN {
        s = st * 1000 / hz / sn; p = pt * 1000 / hz / pn; a = (pt + pg) * 1000 / hz / pn
        printf "  %-36s %6d/%-6d %9.3f ms %9.3f ms %11.3f ms   %.2f× shomei only (rounds:%s), %.2f× with postgres (rounds:%s; ≤ %s)\n",
            w, sn, pn, s, p, a, p / s, pr, a / s, prg, tg }' >>"$BENCH_TMP/rows"
}
: >"$BENCH_TMP/rows"
if want 1; then
    rounds issue
    row "certificate issuance (EST renewal)" 1.2
fi
if want 2; then
    rounds login
    row "password login" 1.5
fi
IDLE="not measured"

# Handshakes with REVOKED revoked: both nodes stopped, seeded, started again.
if want 3; then
    stop_node "$S_PID"
    stop_node "$P_PID"
    python3 "$ROOT/bench/seed_revoked.py" "$BENCH_TMP/s/shomei.db" "$REVOKED"
    python3 "$ROOT/bench/seed_revoked_pg.py" "$URL" "$REVOKED"
    start_node sqlite
    start_node pg
    for n in s p; do
        c=$([ $n = s ] && echo "$S_CERT" || echo "$P_CERT")
        curl -sS --fail -o /dev/null --cacert "$BENCH_TMP/$n/ca/root-ca.crt" --cert "$BENCH_TMP/$n.ichirodt.crt" \
            --key "$BENCH_TMP/$n.ichirodt.key" "$c/cert-login"
    done
    # What each node spends with nothing to do (its revocation watch, upkeep),
    # which the per-operation figures include pro rata.
    s0=$(cpu_ticks "$S_PID") p0=$(cpu_ticks "$P_PID") g0=$(pg_ticks)
    sleep "$SECS"
    IDLE=$(awk -v s=$(($(cpu_ticks "$S_PID") - s0)) -v p=$(($(cpu_ticks "$P_PID") - p0)) -v g=$(($(pg_ticks) - g0)) \
        -v hz="$TICK" -v secs="$SECS" 'BEGIN { printf "SQLite node %.1f ms/s, PG node %.1f ms/s, postgres %.1f ms/s",
            s * 1000 / hz / secs, p * 1000 / hz / secs, g * 1000 / hz / secs }')
    rounds handshake
    row "TLS handshake, $REVOKED revoked" 1.1
fi

printf '\nServer CPU, PostgreSQL node beside SQLite node (durability %s), one run, %s rounds alternating; servers on core 0, load on core 1\n' "$DURABILITY" "$ROUNDS"
printf '  %-36s %13s %12s %12s %14s   %s\n' "per operation (ms CPU)" "ops SQLite/PG" "SQLite node" "PG: shomei" "PG: shomei+pg" "PG / SQLite (target)"
cat "$BENCH_TMP/rows"
echo "  idle, ${SECS}s before the handshakes, $REVOKED revoked: $IDLE"
echo "  (CPU in clock ticks of 1/$TICK s; per-round ratios: shomei only, then shomei + postgres)"
