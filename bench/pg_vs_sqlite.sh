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
# Usage: [DURABILITY=normal] bench/pg_vs_sqlite.sh [seconds] [logins] [revoked]
#        (the issue's figures: 10 200 1000000)
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
LOGINS=${2:-200}
REVOKED=${3:-1000000}
DURABILITY=${DURABILITY:-full}
need openssl:openssl curl:curl python3:python3
build_shomei
(cd "$ROOT" && cargo build --release --locked -q -p shomei-bench)
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
        start_shomei "$BENCH_TMP/p" 0 --database-url "$URL"
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

# measure PID WITH_PG COMMAND…: runs COMMAND on core 1; prints its first
# output field (the operations), then shomei's and postgres's ticks.
measure() {
    local pid=$1 with_pg=$2 s0 s1 p0=0 p1=0 ops
    shift 2
    s0=$(cpu_ticks "$pid")
    [ "$with_pg" = 1 ] && p0=$(pg_ticks)
    ops=$(taskset -c 1 "$@" | awk '{print $1}')
    s1=$(cpu_ticks "$pid")
    [ "$with_pg" = 1 ] && p1=$(pg_ticks)
    echo "$ops $((s1 - s0)) $((p1 - p0))"
}
USERS=(hanakodt tarodt jirodt ichirodt sachikodt hottojr01 hottojr02)
# shellcheck disable=SC2086 # the chains are words
read -r is_n is_t _ < <(measure "$S_PID" 0 "$LOAD" renew "$BENCH_TMP/s/ca/root-ca.crt" "127.0.0.1:${S_CERT##*:}" "$SECS" ${CHAINS[s]})
# shellcheck disable=SC2086
read -r ip_n ip_t ip_pg < <(measure "$P_PID" 1 "$LOAD" renew "$BENCH_TMP/p/ca/root-ca.crt" "127.0.0.1:${P_CERT##*:}" "$SECS" ${CHAINS[p]})
read -r ls_n ls_t _ < <(measure "$S_PID" 0 python3 "$ROOT/bench/logins.py" "$S_PORTAL" "$BENCH_TMP/s/ca/root-ca.crt" "$LOGINS" 4 "${USERS[@]}")
read -r lp_n lp_t lp_pg < <(measure "$P_PID" 1 python3 "$ROOT/bench/logins.py" "$P_PORTAL" "$BENCH_TMP/p/ca/root-ca.crt" "$LOGINS" 4 "${USERS[@]}")

# Handshakes with REVOKED revoked: both nodes stopped, seeded, started again.
stop_node "$S_PID"
stop_node "$P_PID"
python3 "$ROOT/bench/seed_revoked.py" "$BENCH_TMP/s/shomei.db" "$REVOKED"
python3 "$ROOT/bench/seed_revoked_pg.py" "$URL" "$REVOKED"
start_node sqlite
start_node pg
hs() { # NODE PID CERT_URL
    s_time_load "localhost:${3##*:}" "$2" "$SECS" 4 "$BENCH_TMP/$1.ichirodt.crt" "$BENCH_TMP/$1.ichirodt.key" "$BENCH_TMP/$1/ca/root-ca.crt"
}
for n in s p; do
    c=$([ $n = s ] && echo "$S_CERT" || echo "$P_CERT")
    curl -sS --fail -o /dev/null --cacert "$BENCH_TMP/$n/ca/root-ca.crt" --cert "$BENCH_TMP/$n.ichirodt.crt" \
        --key "$BENCH_TMP/$n.ichirodt.key" "$c/cert-login"
done
p0=$(pg_ticks)
read -r hp_n hp_cpu _ < <(hs p "$P_PID" "$P_CERT")
hp_pg=$(($(pg_ticks) - p0))
read -r hs_n hs_cpu _ < <(hs s "$S_PID" "$S_CERT")

printf '\nServer CPU, PostgreSQL node beside SQLite node (durability %s), one run; servers on core 0, load on core 1\n' "$DURABILITY"
printf '  %-44s %9s %13s %13s %17s   %s\n' "per operation (ms CPU)" "ops" "SQLite node" "PG: shomei" "PG: shomei + pg" "PG / SQLite (target)"
row() { # WHAT S_N S_TICKS P_N P_TICKS PG_TICKS TARGET
    awk -v w="$1" -v sn="$2" -v st="$3" -v pn="$4" -v pt="$5" -v pg="$6" -v tg="$7" -v hz="$TICK" 'BEGIN {
        s = st * 1000 / hz / sn; p = pt * 1000 / hz / pn; a = (pt + pg) * 1000 / hz / pn
        printf "  %-44s %4d/%-4d %10.3f ms %10.3f ms %14.3f ms   %.2f× shomei only, %.2f× with postgres (≤ %s)\n",
            w, sn, pn, s, p, a, p / s, a / s, tg }'
}
row "certificate issuance (EST renewal)" "$is_n" "$is_t" "$ip_n" "$ip_t" "$ip_pg" 1.5
row "password login" "$ls_n" "$ls_t" "$lp_n" "$lp_t" "$lp_pg" 1.5
# s_time_load gives ms per handshake; back to ticks for the same row.
row "TLS handshake, $REVOKED revoked" "$hs_n" "$(awk -v c="$hs_cpu" -v n="$hs_n" -v hz="$TICK" 'BEGIN{print c * n * hz / 1000}')" \
    "$hp_n" "$(awk -v c="$hp_cpu" -v n="$hp_n" -v hz="$TICK" 'BEGIN{print c * n * hz / 1000}')" "$hp_pg" 1.1
echo "  (ops: SQLite/PostgreSQL node; CPU in clock ticks of 1/$TICK s, so ±$((1000 / TICK)) ms over the run)"
