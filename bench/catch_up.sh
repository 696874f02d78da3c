#!/usr/bin/env bash
# Catch-up after a cut: two nodes on one PostgreSQL, node B reaching it
# through a pausable TCP proxy (bench/pg_proxy.py). B's connections are cut
# (reset, new ones refused) while node A makes COUNT real revocations: EST
# renewals on A's certificate listener (each revokes the previous
# certificate as superseded, in the renewing transaction, which orders it in
# the revocation log), by shomei-bench on six renewal chains plus a sampled
# chain of curl renewals before and after. Then B is let in again, and
# bench/catch_up.py times from that moment until B's revocation set holds
# all of them, and until B refuses the newest at TLS and OCSP; it checks a
# sample of the revoked at TLS and OCSP and a current certificate's login.
# Nodes on core 0, client and proxy on core 1; a throw-away PostgreSQL
# (scripts/postgres). Loopback only, bounded loops.
# Usage: bench/catch_up.sh [count]   (the issue's figure: 10000)
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000}
need openssl:openssl curl:curl python3:python3
build_shomei
build_shomei -p shomei-bench
NAME="bench_catch_$$"
psql "$SHOMEI_TEST_DATABASE_URL" -q -c "CREATE DATABASE $NAME"
URL="${SHOMEI_TEST_DATABASE_URL%/*}/$NAME"
metrics_of() { grep -o 'http://[0-9.:]*/metrics' "$1.log" | head -1; }

start_shomei "$BENCH_TMP/a" 0 --database-url "$URL"
A_PORTAL=$PORTAL A_CERT=$CERT A_METRICS=$(metrics_of "$BENCH_TMP/a")

# B's database URL goes through the proxy.
PG_PORT=$(sed -E 's#.*@[^:/]+:([0-9]+)/.*#\1#' <<<"$URL")
taskset -c 1 python3 "$ROOT/bench/pg_proxy.py" 0 "$PG_PORT" >"$BENCH_TMP/proxy.out" 2>"$BENCH_TMP/proxy.err" &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
for _ in $(seq 1 100); do grep -q '^port' "$BENCH_TMP/proxy.out" 2>/dev/null && break; sleep 0.05; done
PROXY_PORT=$(awk '/^port/ {print $2}' "$BENCH_TMP/proxy.out")
B_URL=$(sed -E "s#@[^:/]+:[0-9]+/#@127.0.0.1:$PROXY_PORT/#" <<<"$URL")
mkdir -p "$BENCH_TMP/b"
cp -r "$BENCH_TMP/a/ca" "$BENCH_TMP/b/ca"
start_shomei "$BENCH_TMP/b" 0 --database-url "$B_URL"
B_METRICS=$(metrics_of "$BENCH_TMP/b")

# Renewal chains on A (enrolled on A too): five enrolled now, the sampled one (ichirodt) too,
# and the demo data's PKCS#12 files for the others.
PORTAL=$A_PORTAL
chains=()
for who in jirodt sachikodt ichirodt; do
    enroll "$BENCH_TMP/a" "$who" "$BENCH_TMP/$who"
    [ "$who" = ichirodt ] || chains+=("$BENCH_TMP/$who.key:$BENCH_TMP/$who.crt")
done
for who in hanakodt tarodt hottojr01 hottojr02; do
    openssl pkcs12 -in "$BENCH_TMP/a/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nodes -nocerts 2>/dev/null |
        openssl pkey -out "$BENCH_TMP/$who.key"
    openssl pkcs12 -in "$BENCH_TMP/a/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nokeys -clcerts 2>/dev/null |
        openssl x509 -out "$BENCH_TMP/$who.crt"
    chains+=("$BENCH_TMP/$who.key:$BENCH_TMP/$who.crt")
done

echo "Two nodes on one PostgreSQL, core 0; B through a pausable proxy; client and proxy on core 1"
taskset -c 1 python3 "$ROOT/bench/catch_up.py" "$PROXY_PID" "$BENCH_TMP/proxy.out" "$A_CERT" "$A_METRICS" \
    "$CERT" "$PKI" "$B_METRICS" "$BENCH_TMP/a/ca/root-ca.crt" "$BENCH_TMP/a/ca/issuing-ca.crt" \
    "$COUNT" "$BENCH_TMP" "$ROOT/target/release/shomei-bench" "$BENCH_TMP/ichirodt" "${chains[@]}"
