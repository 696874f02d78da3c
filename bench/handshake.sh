#!/usr/bin/env bash
# Certificate-method TLS full handshakes (TLS 1.3, P-256 client certificate,
# no resumption): server CPU time per handshake, Shomei's certificate
# listener beside nginx (one worker, ssl_verify_client on, same CA and
# certificates). Servers on core 0, load (openssl s_time -new) on core 1.
# The two are measured in ROUNDS rounds (default 3), their order alternating,
# so that machine noise hits both alike; each round's ratio is shown.
# Usage: [ROUNDS=3] bench/handshake.sh [seconds] [parallel clients]
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
CLIENTS=${2:-4}
ROUNDS=${ROUNDS:-3}
need nginx:nginx-light openssl:openssl curl:curl
build_shomei

D="$BENCH_TMP/shomei"
start_shomei "$D" 0
enroll "$D" sachikodt "$BENCH_TMP/client"

# nginx with the same server certificate, CA and client certificate.
NG="$BENCH_TMP/nginx"
NGPORT=$((20000 + RANDOM % 20000))
nginx_conf "$NG" "$D" "$NGPORT"
taskset -c 0 nginx -p "$NG" -c "$NG/nginx.conf" &
PIDS+=($!)
sleep 0.5
NGINX_WORKER=$(pgrep -P "$(cat "$NG/nginx.pid")" | head -1)

run_load() { # HOST:PORT PID
    s_time_load "$1" "$2" "$SECS" "$CLIENTS" "$BENCH_TMP/client.crt" "$BENCH_TMP/client.key" "$D/ca/root-ca.crt"
}

# A handshake must really present the certificate and be accepted.
curl -sS --fail -o /dev/null --cacert "$D/ca/root-ca.crt" --cert "$BENCH_TMP/client.crt" --key "$BENCH_TMP/client.key" "$CERT/cert-login"
curl -sS --fail -o /dev/null --cacert "$D/ca/root-ca.crt" --cert "$BENCH_TMP/client.crt" --key "$BENCH_TMP/client.key" "https://localhost:$NGPORT/"

ROUNDS_OUT="$BENCH_TMP/rounds.txt"
: >"$ROUNDS_OUT"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        read -r s_n s_cpu s_rate < <(run_load "localhost:${CERT##*:}" "$SHOMEI_PID")
        read -r n_n n_cpu n_rate < <(run_load "localhost:$NGPORT" "$NGINX_WORKER")
    else
        read -r n_n n_cpu n_rate < <(run_load "localhost:$NGPORT" "$NGINX_WORKER")
        read -r s_n s_cpu s_rate < <(run_load "localhost:${CERT##*:}" "$SHOMEI_PID")
    fi
    echo "$r $s_n $s_cpu $s_rate $n_n $n_cpu $n_rate" >>"$ROUNDS_OUT"
    echo "  round $r done" >&2
done

printf '\nTLS 1.3 full handshakes with a P-256 client certificate, %ss, %s s_time clients on core 1, server on core 0, %s rounds (order alternating)\n' "$SECS" "$CLIENTS" "$ROUNDS"
printf '%6s | %-28s %10s %8s %12s | %-24s %10s %8s %12s | %7s\n' "round" "server" "handshakes" "hs/s" "CPU/hs" "server" "handshakes" "hs/s" "CPU/hs" "ratio"
while read -r r s_n s_cpu s_rate n_n n_cpu n_rate; do
    printf '%6s | %-28s %10s %8s %9s ms | %-24s %10s %8s %9s ms | %7s\n' "$r" "Shomei certificate listener" "$s_n" "$s_rate" "$s_cpu" \
        "nginx 1 worker (OpenSSL)" "$n_n" "$n_rate" "$n_cpu" "$(awk -v a="$s_cpu" -v b="$n_cpu" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done <"$ROUNDS_OUT"
awk '{ s += $2 * $3; sn += $2; n += $5 * $6; nn += $5; q = ($6 > 0 ? $3 / $6 : 0); line = line sprintf(" %.2f", q); if (q > worst) worst = q }
    END { printf "Shomei / nginx CPU per handshake: %.2f over all rounds (%.3f vs %.3f ms); each round:%s; worst %.2f (target <= 0.35)\n",
        (s / sn) / (n / nn), s / sn, n / nn, line, worst }' "$ROUNDS_OUT"
