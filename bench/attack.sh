#!/usr/bin/env bash
# "Hold under attack" at full size, in one run: an anonymous flood of the
# login page, concurrent guesses (one user; one address), 500 concurrent
# logins (peak RSS, logins/s beside the raw Argon2 rate of the same core),
# 20,000 idle or half-sent connections, and a returning customer (device
# cookie) logging in during a flood of 500 concurrent wrong-password logins
# from 100 addresses, beside the same customer on an idle server and without
# the cookie, each beside its limit. The server runs
# on core 0 with the default settings; the load (bench/attack.py) on core 1.
# Loopback only, bounded loops; everything in a temporary directory.
# SECTIONS (default "1 2 3 4 6"; 5 comes with 3): e.g. SECTIONS=6 for the
# returning customer alone.
# Usage: [SECTIONS=…] bench/attack.sh [flood requests] [concurrent logins] [idle connections]
source "$(dirname "$0")/lib.sh"
FLOOD=${1:-120000}
LOGINS=${2:-500}
IDLE=${3:-20000}
need openssl:openssl curl:curl python3:python3
build_shomei
build_shomei -p shomei-bench
LOAD="$ROOT/target/release/shomei-bench"
ulimit -n "$(ulimit -Hn)"

D="$BENCH_TMP/shomei"
start_shomei "$D" 0
kill "$SHOMEI_PID"
wait "$SHOMEI_PID" 2>/dev/null || true
# Users atk0000…: general users of the demo company with the demo password.
python3 - "$D/shomei.db" "$LOGINS" <<'PY'
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2]) + 20
c = sqlite3.connect(db)
h = c.execute("SELECT login_hash, confirm_hash FROM users WHERE login_id = 'tarodt'").fetchone()
now = int(time.time())
c.executemany(
    "INSERT INTO users(company_id, login_id, name, role, email, login_hash, confirm_hash, created_at) "
    "VALUES (1, ?, ?, 'general', '', ?, ?, ?)",
    [(f"atk{i:04d}", f"負荷{i:04d}", h[0], h[1], now) for i in range(n)])
c.commit()
PY
start_shomei "$D" 0
METRICS=$(grep -o 'http://[0-9.:]*/metrics' "$D.log" | head -1 | sed 's#/metrics##')
echo "Shomei on core 0 (default settings), load on core 1"
printf '  %-58s %14s   %s\n' "what" "measured" "limit / reference"
OUT=$(taskset -c 1 python3 -u "$ROOT/bench/attack.py" "$PORTAL" "$PKI" "$METRICS" "$D/ca/root-ca.crt" \
    "$SHOMEI_PID" atk "$FLOOD" "$LOGINS" "$IDLE")
grep -v '^RATE' <<<"$OUT"
read -r _ RATE WORKERS < <(grep '^RATE' <<<"$OUT")
if [ "${WORKERS:-0}" != 0 ]; then
    RAW=$(taskset -c 0 "$LOAD" argon2 5 "$WORKERS" | awk '{printf "%.2f", $1 / $2}')
    echo
    echo "5. Password hashing rate on the server's core"
    printf '  %-58s %14s   %s\n' "raw Argon2id (19 MiB, t=2), $WORKERS thread(s), hashes/s" "$RAW" ""
    printf '  %-58s %14s   %s\n' "logins/s, sustained (keep-alive)" "$RATE" \
        "ratio $(awk -v a="$RATE" -v b="$RAW" 'BEGIN { printf "%.2f", a / b }') (target >= 0.9)"
fi
