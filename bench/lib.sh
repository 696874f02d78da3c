# Shared helpers of the benchmark scripts: start Shomei on free ports with a
# fresh data directory, enroll a client certificate, read a process's CPU.
# Source it; it sets BENCH_TMP and cleans up on exit.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHOMEI="$ROOT/target/release/shomei"
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

build_shomei() {
    (cd "$ROOT" && cargo build --release --locked -q -p shomei -p shomei-cert)
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

# cpu_ticks PID: utime+stime of the process (all threads), in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}
TICK=$(getconf CLK_TCK)
