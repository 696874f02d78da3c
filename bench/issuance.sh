#!/usr/bin/env bash
# Issuance pipeline, certificate-authenticated (CSR verify → sign → DB commit
# with its 操作履歴 row → revocation of the superseded certificate), Shomei on
# one core, beside cfssl serve's /api/v1/cfssl/sign (no authentication, no
# database) on the same core and with the same load tool.
# Shomei's figure includes one full mutual-TLS handshake per certificate:
# each renewal must come over a new connection with the certificate the
# previous step returned (the old one is revoked at once).
# Usage: [DURABILITY=normal] [HSM=1] bench/issuance.sh [seconds]
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
need cfssl:golang-cfssl openssl:openssl curl:curl
build_shomei
build_shomei -p shomei-bench
LOAD="$ROOT/target/release/shomei-bench"

# DURABILITY=normal: commits go to the WAL without an fsync each (see
# shomei.example.toml); the default "full" flushes every issuance to disk.
DURABILITY=${DURABILITY:-full}
printf '[settings]\ndurability = "%s"\n' "$DURABILITY" >"$BENCH_TMP/shomei.toml"
# HSM=1: the issuing CA's key in a SoftHSM token (PKCS#11), so every
# certificate is signed by the token; cfssl then signs with a CA of its own.
HSM=${HSM:-0}
if [ "$HSM" = 1 ]; then
    need softhsm2-util:softhsm2
    mkdir -p "$BENCH_TMP/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$BENCH_TMP/tokens" >"$BENCH_TMP/softhsm2.conf"
    export SOFTHSM2_CONF="$BENCH_TMP/softhsm2.conf" SHOMEI_PKCS11_PIN=428571
    softhsm2-util --init-token --free --label bench --pin "$SHOMEI_PKCS11_PIN" --so-pin 14285714 >/dev/null
    printf 'pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"\npkcs11_token_label = "bench"\n' >>"$BENCH_TMP/shomei.toml"
fi
D="$BENCH_TMP/shomei"
start_shomei "$D" 0 --config "$BENCH_TMP/shomei.toml"
# One renewal chain per user with a valid certificate: three enrolled now,
# four from the demo data's PKCS#12 files.
chains=()
for who in jirodt ichirodt sachikodt; do
    enroll "$D" "$who" "$BENCH_TMP/$who"
    chains+=("$BENCH_TMP/$who.key:$BENCH_TMP/$who.crt")
done
for who in hanakodt tarodt hottojr01 hottojr02; do
    demo_key_and_cert "$D" "$who" "$BENCH_TMP/$who"
    chains+=("$BENCH_TMP/$who.key:$BENCH_TMP/$who.crt")
done

before=$(cpu_ticks "$SHOMEI_PID")
read -r s_ops s_secs _ < <(taskset -c 1 "$LOAD" renew "$D/ca/root-ca.crt" "127.0.0.1:${CERT##*:}" "$SECS" "${chains[@]}")
after=$(cpu_ticks "$SHOMEI_PID")
s_ticks=$((after - before))

# cfssl with the same issuing CA (SEC1 key), one core, same load tool.
CF="$BENCH_TMP/cfssl"
mkdir -p "$CF"
if [ "$HSM" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CF/ca-key.pem" \
        -subj "/CN=cfssl bench CA" -days 30 -out "$CF/ca.pem" 2>/dev/null
    CFCA="$CF/ca.pem"
else
    openssl ec -in "$D/ca/issuing-ca.key" -out "$CF/ca-key.pem" 2>/dev/null
    CFCA="$D/ca/issuing-ca.crt"
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CF/k.pem" -subj "/CN=bench" -out "$CF/csr.pem" 2>/dev/null
CFPORT=$((20000 + RANDOM % 20000))
GOMAXPROCS=1 taskset -c 0 cfssl serve -address 127.0.0.1 -port "$CFPORT" -ca "$CFCA" -ca-key "$CF/ca-key.pem" -loglevel 5 >"$CF/log" 2>&1 &
CFPID=$!
PIDS+=("$CFPID")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$CFPORT/" && break; sleep 0.1; done
before=$(cpu_ticks "$CFPID")
read -r c_ops c_secs _ < <(taskset -c 1 "$LOAD" cfssl "127.0.0.1:$CFPORT" "$SECS" 8 "$CF/csr.pem")
after=$(cpu_ticks "$CFPID")
c_ticks=$((after - before))

printf '\nCertificate issuance, server on core 0, load tool (shomei-bench) on core 1, %ss, durability %s, issuing key %s\n' "$SECS" "$DURABILITY" "$([ "$HSM" = 1 ] && echo "in SoftHSM (PKCS#11)" || echo "file")"
printf '%-58s %10s %10s %16s\n' "server" "certs" "certs/s" "server CPU/cert"
awk -v n="$s_ops" -v s="$s_secs" -v t="$s_ticks" -v hz="$TICK" \
    'BEGIN { printf "%-58s %10d %10.0f %13.3f ms\n", "Shomei simplereenroll (mTLS handshake + issue + DB + audit)", n, n / s, t * 1000 / hz / n }'
awk -v n="$c_ops" -v s="$c_secs" -v t="$c_ticks" -v hz="$TICK" \
    'BEGIN { printf "%-58s %10d %10.0f %13.3f ms\n", "cfssl /api/v1/cfssl/sign (keep-alive, no auth, no DB)", n, n / s, t * 1000 / hz / n }'
awk -v a="$s_ops" -v as="$s_secs" -v b="$c_ops" -v bs="$c_secs" 'BEGIN { printf "Shomei / cfssl certificates per second: %.2f (target >= 1.0)\n", (a / as) / (b / bs) }'
