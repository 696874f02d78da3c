# Shared helpers of the benchmark scripts: start Shomei on free ports with a
# fresh data directory, enroll a client certificate, read a process's CPU.
# Source it; it sets BENCH_TMP and cleans up on exit.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHOMEI="${SHOMEI:-$ROOT/target/release/shomei}"
BENCH_TMP="$(mktemp -d /tmp/shomei-bench.XXXXXX)"
PIDS=()
GROUPS_TO_KILL=() # process groups (started with setsid), killed whole
cleanup() {
    for g in "${GROUPS_TO_KILL[@]:-}"; do [ -n "$g" ] && kill -- "-$g" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    [ -n "${KEEP:-}" ] || rm -rf "$BENCH_TMP"
}
trap cleanup EXIT

need() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# build_shomei [-p crate …]: the release binaries (shomei and shomei-cert, or
# the crates named). PREBUILT=1 skips the build and uses what target/release
# holds (so that sources can change while a long run goes on).
build_shomei() {
    [ -z "${PREBUILT:-}" ] || return 0
    [ $# -gt 0 ] || set -- -p shomei -p shomei-cert
    (cd "$ROOT" && cargo build --release --locked -q "$@")
}

# start_shomei DIR CPU [serve args…]: starts the demo server pinned to a CPU; sets
# SHOMEI_PID, PORTAL (URL), CERT (URL), PKI (URL of the plain-HTTP listener).
start_shomei() {
    local dir=$1 cpu=${2:-0}
    shift 2 || true
    taskset -c "$cpu" "$SHOMEI" serve --demo --data-dir "$dir" --listen 127.0.0.1:0 "$@" >"$dir.log" 2>&1 &
    SHOMEI_PID=$!
    PIDS+=("$SHOMEI_PID")
    for _ in $(seq 1 1200); do
        if grep -q "CRL and OCSP" "$dir.log" 2>/dev/null; then break; fi
        sleep 0.1
    done
    PORTAL=$(grep -o 'https://localhost:[0-9]*/login' "$dir.log" | head -1 | sed 's#/login##')
    CERT=$(grep -o 'https://localhost:[0-9]*/cert-login' "$dir.log" | head -1 | sed 's#/cert-login##')
    PKI=$(grep -o 'http://localhost:[0-9]*/pki/crl' "$dir.log" | head -1 | sed 's#/pki/crl##')
    [ -n "$CERT" ] || { cat "$dir.log"; echo "Shomei did not start" >&2; exit 1; }
}

# enroll DIR LOGIN_ID OUT_PREFIX: a P-256 key and certificate via EST.
enroll() {
    local dir=$1 who=$2 out=$3
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
        -subj "/CN=$who" -outform DER -out "$out.csr" 2>/dev/null
    base64 -w0 "$out.csr" >"$out.csr.b64"
    curl -sS --fail --cacert "$dir/ca/root-ca.crt" -u "$who:Shomei#Demo1" \
        -H 'Content-Type: application/pkcs10' -H 'Content-Transfer-Encoding: base64' \
        --data-binary "@$out.csr.b64" "$PORTAL/.well-known/est/simpleenroll" |
        tr -d "\r" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$out.crt"
}

# demo_key_and_cert DIR LOGIN_ID OUT_PREFIX: the key and certificate of a
# demo user from the demo data's PKCS#12 file, as OUT_PREFIX.key/.crt.
demo_key_and_cert() {
    local dir=$1 who=$2 out=$3
    openssl pkcs12 -in "$dir/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nodes -nocerts 2>/dev/null |
        openssl pkey -out "$out.key"
    openssl pkcs12 -in "$dir/demo-certs/$who.p12" -passin 'pass:Shomei#P12demo' -nokeys -clcerts 2>/dev/null |
        openssl x509 -out "$out.crt"
}

# cpu_ticks PID: utime+stime of the process (all threads), in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}
TICK=$(getconf CLK_TCK)

# nginx_conf DIR DATA PORT [EXTRA]: nginx.conf in DIR for one worker serving
# TLS 1.3 on PORT with DATA's server certificate, requiring client
# certificates from DATA's CA (no session cache, no tickets), EXTRA lines in
# the server block. Writes DIR/fullchain.pem and DIR/clientca.pem too.
nginx_conf() {
    local dir=$1 data=$2 port=$3 extra=${4:-}
    mkdir -p "$dir/logs"
    cat "$data/ca/server.crt" "$data/ca/issuing-ca.crt" >"$dir/fullchain.pem"
    cat "$data/ca/issuing-ca.crt" "$data/ca/root-ca.crt" >"$dir/clientca.pem"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log crit;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $dir/fullchain.pem;
        ssl_certificate_key $data/ca/server.key;
        ssl_client_certificate $dir/clientca.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_session_cache off;
        ssl_session_tickets off;
        $extra
        location / { return 200 "ok"; }
    }
}
CONF
}

# s_time_load HOST:PORT PID SECS CLIENTS CERT KEY ROOT: full handshakes with
# a client certificate from CLIENTS `openssl s_time -new` on core 1; prints
# "handshakes server_cpu_ms_per_handshake handshakes_per_second".
s_time_load() {
    local target=$1 pid=$2 secs=$3 clients=$4 cert=$5 key=$6 root=$7 before after total=0 n
    before=$(cpu_ticks "$pid")
    local outs=()
    for i in $(seq 1 "$clients"); do
        taskset -c 1 openssl s_time -connect "$target" -new -time "$secs" \
            -cert "$cert" -key "$key" -CAfile "$root" >"$BENCH_TMP/st.$i" 2>&1 &
        outs+=($!)
    done
    wait "${outs[@]}"
    after=$(cpu_ticks "$pid")
    for i in $(seq 1 "$clients"); do
        n=$(grep -o '^[0-9]* connections in' "$BENCH_TMP/st.$i" | head -1 | awk '{print $1}')
        total=$((total + ${n:-0}))
    done
    awk -v h="$total" -v t=$((after - before)) -v hz="$TICK" -v s="$secs" \
        'BEGIN { printf "%d %.3f %.0f\n", h, (h ? t * 1000 / hz / h : 0), h / s }'
}
