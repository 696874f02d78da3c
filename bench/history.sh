#!/usr/bin/env bash
# 管理業務 at scale: a company of 10,000 users and 1,000,000 操作履歴 rows;
# p50/p99 of BRSK018 and 操作履歴照会 (first, filtered, last page) as one
# administrator sees them over HTTPS on loopback (target p99 < 50 ms), and
# the server's RSS under that load. Server on core 0, client on core 1.
# Usage: bench/history.sh [rounds per screen] [users] [rows]
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-200}
USERS=${2:-10000}
ROWS=${3:-1000000}
need openssl:openssl curl:curl python3:python3
build_shomei
D="$BENCH_TMP/shomei"
start_shomei "$D" 0
kill "$SHOMEI_PID"
wait "$SHOMEI_PID" 2>/dev/null || true
# Company 1 is the demo's 株式会社ほくぎん商事; hanakodt is its 管理者.
python3 "$ROOT/bench/seed_company.py" "$D/shomei.db" 1 "$USERS" "$ROWS"
start_shomei "$D" 0
echo
echo "A company of $USERS users and $ROWS 操作履歴 rows, $ROUNDS requests a screen, one keep-alive client on core 1"
taskset -c 1 python3 "$ROOT/bench/history_load.py" "$PORTAL" "$D/ca/root-ca.crt" hanakodt "$ROUNDS"
awk '/VmRSS/ {printf "server RSS after the load: %d MB\n", $2 / 1024} /VmHWM/ {printf "server peak RSS: %d MB\n", $2 / 1024}' "/proc/$SHOMEI_PID/status"
