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
mkdir -p "$NG/logs"
cat "$D/ca/server.crt" "$D/ca/issuing-ca.crt" >"$NG/fullchain.pem"
cat "$D/ca/issuing-ca.crt" "$D/ca/root-ca.crt" >"$NG/clientca.pem"
NGPORT=$((20000 + RANDOM % 20000))
cat >"$NG/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/logs/error.log crit;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGPORT ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $NG/fullchain.pem;
        ssl_certificate_key $D/ca/server.key;
        ssl_client_certificate $NG/clientca.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok"; }
    }
}
CONF
taskset -c 0 nginx -p "$NG" -c "$NG/nginx.conf" &
PIDS+=($!)
sleep 0.5
NGINX_WORKER=$(pgrep -P "$(cat "$NG/nginx.pid")" | head -1)

# run_load HOSTPORT PID: prints "handshakes cpu_ms_per_handshake rate".
run_load() {
    local target=$1 pid=$2 before after total=0
    before=$(cpu_ticks "$pid")
    local outs=()
    for i in $(seq 1 "$CLIENTS"); do
        taskset -c 1 openssl s_time -connect "$target" -new -time "$SECS" \
            -cert "$BENCH_TMP/client.crt" -key "$BENCH_TMP/client.key" -CAfile "$D/ca/root-ca.crt" \
            >"$BENCH_TMP/st.$i" 2>&1 &
        outs+=($!)
    done
    wait "${outs[@]}"
    after=$(cpu_ticks "$pid")
    for i in $(seq 1 "$CLIENTS"); do
        n=$(grep -o '^[0-9]* connections in' "$BENCH_TMP/st.$i" | head -1 | awk '{print $1}')
        total=$((total + ${n:-0}))
    done
    awk -v h="$total" -v t=$((after - before)) -v hz="$TICK" -v s="$SECS" \
        'BEGIN { printf "%d %.3f %.0f\n", h, (h ? t * 1000 / hz / h : 0), h / s }'
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
