#!/usr/bin/env bash
# Two nodes on one PostgreSQL: revocation on A → enforced on B (TLS refusal,
# OCSP revoked, the CRL of the certificate's distribution point lists it),
# p50/p99 over ROUNDS revocations, with REVOKED certificates already revoked
# (seeded with bench/seed_revoked_pg.py while no node runs; default 0: the
# database's demo contents). Both nodes on core 0, the client on core 1; a
# throw-away PostgreSQL (scripts/postgres). Loopback only, bounded loops.
# Usage: bench/two_nodes.sh [rounds] [revoked]   (the issue's figure: 30 1000000)
if [ -z "${SHOMEI_TEST_DATABASE_URL:-}" ]; then
    exec "$(dirname "$0")/../scripts/postgres" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-30}
REVOKED=${2:-0}
need openssl:openssl curl:curl python3:python3
build_shomei
NAME="bench_two_$$"
psql "$SHOMEI_TEST_DATABASE_URL" -q -c "CREATE DATABASE $NAME"
URL="${SHOMEI_TEST_DATABASE_URL%/*}/$NAME"
start_shomei "$BENCH_TMP/a" 0 --database-url "$URL"
if [ "$REVOKED" -gt 0 ]; then
    # The first start made the schema and the demo data; seed with A stopped.
    kill "$SHOMEI_PID"
    wait "$SHOMEI_PID" 2>/dev/null || true
    python3 "$ROOT/bench/seed_revoked_pg.py" "$URL" "$REVOKED"
    start_shomei "$BENCH_TMP/a" 0 --database-url "$URL"
fi
A_PORTAL=$PORTAL
mkdir -p "$BENCH_TMP/b"
cp -r "$BENCH_TMP/a/ca" "$BENCH_TMP/b/ca"
start_shomei "$BENCH_TMP/b" 0 --database-url "$URL"
echo "Two nodes on one PostgreSQL, core 0; client on core 1; $REVOKED seeded;" \
    "B's revocation set at start: $(grep -o 'revoked=[0-9]*' "$BENCH_TMP/b.log" | head -1)"
taskset -c 1 python3 "$ROOT/bench/two_nodes.py" "$A_PORTAL" "$CERT" "$PKI" "$BENCH_TMP/a/ca/root-ca.crt" \
    "$BENCH_TMP/a/ca/issuing-ca.crt" "$ROUNDS" "$BENCH_TMP" "$REVOKED"
