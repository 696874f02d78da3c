#!/usr/bin/env bash
# The help desk's user search (OPR010) across 10,000 companies and 100,000
# users, each with a certificate: p50/p99 per kind of search as one operator
# sees it over HTTPS on loopback (target p99 < 50 ms), deep pages reached by
# following the screen's 次へ/前へ keys, and the server's RSS (the console runs
# in it) after the load. Server on core 0, client on core 1.
# Usage: bench/user_search.sh [rounds per kind] [companies] [users per company]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-200}
COMPANIES=${2:-10000}
PER=${3:-10}
need openssl:openssl python3:python3
build_shomei
D="$BENCH_TMP/shomei"
start_shomei "$D" 0
kill "$SHOMEI_PID"
wait "$SHOMEI_PID" 2>/dev/null || true
python3 "$ROOT/bench/seed_users.py" "$D/shomei.db" "$COMPANIES" "$PER" >"$BENCH_TMP/samples.json"
start_shomei "$D" 0
CONSOLE=$(grep -o 'Operator console[^:]*: https://localhost:[0-9]*' "$D.log" | head -1 | grep -o 'https://localhost:[0-9]*')
[ -n "$CONSOLE" ] || { cat "$D.log"; echo "no operator console" >&2; exit 1; }
"$SHOMEI" operator add --data-dir "$D" --name bench --role helpdesk,operations-admin --out "$BENCH_TMP/bench.p12" --json >"$BENCH_TMP/op.json"
P12_PW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["p12_password"])' "$BENCH_TMP/op.json")
OP_PW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["confirm_password"])' "$BENCH_TMP/op.json")
openssl pkcs12 -in "$BENCH_TMP/bench.p12" -passin "pass:$P12_PW" -nokeys -out "$BENCH_TMP/bench.crt" 2>/dev/null
openssl pkcs12 -in "$BENCH_TMP/bench.p12" -passin "pass:$P12_PW" -nocerts -nodes -out "$BENCH_TMP/bench.key" 2>/dev/null
awk '/VmRSS/ {printf "server RSS before the load: %d MB\n", $2 / 1024}' "/proc/$SHOMEI_PID/status"
echo
echo "$COMPANIES companies, $((COMPANIES * PER)) users with a certificate each, $ROUNDS requests a kind, one keep-alive client on core 1"
taskset -c 1 python3 "$ROOT/bench/user_search_load.py" "$CONSOLE" "$D/ca/root-ca.crt" "$BENCH_TMP/bench.crt" \
    "$BENCH_TMP/bench.key" "$OP_PW" "$ROUNDS" "$COMPANIES" "$BENCH_TMP/samples.json" "$PER"
awk '/VmRSS/ {printf "server RSS after the load: %d MB\n", $2 / 1024} /VmHWM/ {printf "server peak RSS: %d MB\n", $2 / 1024}' "/proc/$SHOMEI_PID/status"
