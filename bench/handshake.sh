#!/usr/bin/env bash
# Certificate-method TLS full handshakes (TLS 1.3, P-256 client certificate,
# no resumption): server CPU time per handshake, Shomei's certificate
# listener beside nginx (one worker, ssl_verify_client on, same CA and
# certificates). Servers on core 0, load (openssl s_time -new) on core 1.
# Usage: bench/handshake.sh [seconds] [parallel clients]
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
CLIENTS=${2:-4}
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

read -r s_n s_cpu s_rate < <(run_load "localhost:${CERT##*:}" "$SHOMEI_PID")
read -r n_n n_cpu n_rate < <(run_load "localhost:$NGPORT" "$NGINX_WORKER")

printf '\nTLS 1.3 full handshakes with a P-256 client certificate, %ss, %s s_time clients on core 1, server on core 0\n' "$SECS" "$CLIENTS"
printf '%-34s %12s %14s %18s\n' "server" "handshakes" "handshakes/s" "server CPU/handshake"
printf '%-34s %12s %14s %15s ms\n' "Shomei certificate listener" "$s_n" "$s_rate" "$s_cpu"
printf '%-34s %12s %14s %15s ms\n' "nginx 1 worker (OpenSSL)" "$n_n" "$n_rate" "$n_cpu"
awk -v a="$s_cpu" -v b="$n_cpu" 'BEGIN { if (b > 0) printf "Shomei / nginx CPU per handshake: %.2f (target <= 0.50)\n", a / b }'
