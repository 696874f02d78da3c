#!/usr/bin/env bash
# Two nodes on one PostgreSQL: revocation on A → enforced on B (TLS refusal,
# OCSP revoked, CRL lists it), p50/p99 over ROUNDS revocations, with the
# database's default contents (not the million revoked of revocation.sh).
# Both nodes on core 0, the client on core 1; a throw-away PostgreSQL
# (scripts/postgres). Loopback only, bounded loops.
# Usage: bench/two_nodes.sh [rounds]
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-30}
need openssl:openssl curl:curl python3:python3
build_shomei
NAME="bench_two_$$"
psql "$SHOMEI_TEST_DATABASE_URL" -q -c "CREATE DATABASE $NAME"
URL="${SHOMEI_TEST_DATABASE_URL%/*}/$NAME"
start_shomei "$BENCH_TMP/a" 0 --database-url "$URL"
A_PORTAL=$PORTAL
mkdir -p "$BENCH_TMP/b"
cp -r "$BENCH_TMP/a/ca" "$BENCH_TMP/b/ca"
start_shomei "$BENCH_TMP/b" 0 --database-url "$URL"
echo "Two nodes on one PostgreSQL, core 0; client on core 1"
taskset -c 1 python3 "$ROOT/bench/two_nodes.py" "$A_PORTAL" "$CERT" "$PKI" "$BENCH_TMP/a/ca/root-ca.crt" \
    "$BENCH_TMP/a/ca/issuing-ca.crt" "$ROUNDS" "$BENCH_TMP"
