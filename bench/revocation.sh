#!/usr/bin/env bash
# Revocation at a million revoked certificates, side by side with the
# reference tools, in one run:
#  1. server CPU per certificate-method TLS full handshake with 0, 10k, 100k
#     and 1M revoked certificates in the database, beside nginx (one worker,
#     ssl_crl holding the same entries); servers on core 0, load on core 1;
#  2. revocation → enforced latency (portal 実行 returns → TLS refuses, OCSP
#     says revoked, the CRL lists it), p50 and p99, with 1M revoked;
#  3. CRL generation with 1M entries: `shomei crl export` beside
#     `openssl ca -gencrl` on the same entries, time and peak RSS;
#  4. OCSP responses/s for random issued serials, beside
#     `openssl ocsp -index … -multi 2` on the same data and the same core,
#     in alternating rounds, after a warm-up (Shomei asked about each of
#     those serials once, which signs the answers of certificates seeded
#     without issuance, as a first question after a start does; openssl a
#     run of WARMUP seconds); then every good certificate asked about once:
#     the memory of its pre-signed answer (bytes per certificate in force);
#  5. EST renewals (each revokes the superseded certificate, so each one
#     re-signs its CRL partition) per second and server CPU per renewal at
#     0, 10k, 100k and 1M revoked: each level's data directory is copied as
#     it is seeded, and the copies run side by side, measured in ROUNDS
#     rounds (default 3), 0 and the largest back to back in an order that
#     alternates, so that machine noise hits them alike, after a warm-up
#     run of WARMUP seconds (default 5) per level that is not counted; each
#     round's ratio (largest / 0) is shown;
#  6. CRL sizes at 1M revoked: per partition, all of them, the bundle, and
#     the one undivided CRL (shomei crl export) beside them.
# The records are bulk-inserted (bench/seed_revoked.py); everything lives in
# a temporary directory removed at the end. Loopback only, bounded loops.
# SECTIONS (default "1 2 3 4 5 6"): the sections measured and shown (the
# levels are seeded whatever it says), e.g. SECTIONS=5 for the renewals alone.
# CONFIG: a shomei.toml every server starts with (e.g. crl_partitions = 256,
# with SEED_CRL_PARTITIONS=256 for the seeded rows).
# Usage: [ROUNDS=3] [SECTIONS=…] bench/revocation.sh [seconds per load run] [s_time clients] [largest count]
source "$(dirname "$0")/lib.sh"
SECS=${1:-10}
CLIENTS=${2:-4}
MAX=${3:-1000000}
ROUNDS=${ROUNDS:-3}
SECTIONS=" ${SECTIONS:-1 2 3 4 5 6} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
need nginx:nginx-light openssl:openssl curl:curl python3:python3 /usr/bin/time:time
build_shomei
build_shomei -p shomei-bench
LOAD="$ROOT/target/release/shomei-bench"
HERE="$ROOT/bench"

D="$BENCH_TMP/shomei"
INDEX="$BENCH_TMP/index.txt"
SERIALS="$BENCH_TMP/serials.txt"
: >"$INDEX"
echo "unique_subject = no" >"$INDEX.attr"
: >"$SERIALS"
start_shomei "$D" 0 ${CONFIG:+--config "$CONFIG"}
METRICS=$(grep -o 'Metrics (Prometheus): http://[0-9.:]*' "$D.log" | tail -1 | sed 's#.*: ##')
enroll "$D" sachikodt "$BENCH_TMP/client"
# Renewal chains (section 5): jirodt enrolled now, four users from the demo
# data's PKCS#12 files. shomei-bench writes each chain's last certificate
# back, so every count goes on with it.
enroll "$D" jirodt "$BENCH_TMP/jirodt"
chains=("$BENCH_TMP/jirodt.key:$BENCH_TMP/jirodt.crt")
for who in hanakodt tarodt hottojr01 hottojr02; do
    demo_key_and_cert "$D" "$who" "$BENCH_TMP/$who"
    chains+=("$BENCH_TMP/$who.key:$BENCH_TMP/$who.crt")
done
RENEWALS="$BENCH_TMP/renewals.txt"
: >"$RENEWALS"

stop_shomei() {
    kill "$SHOMEI_PID"
    wait "$SHOMEI_PID" 2>/dev/null || true
}

# nginx checks CRLs along the whole chain (CRL_CHECK_ALL): an empty CRL of
# the root for the issuing CA, made once with openssl ca.
ROOTCA="$BENCH_TMP/rootca"
mkdir -p "$ROOTCA"
: >"$ROOTCA/index.txt"
echo 01 >"$ROOTCA/crlnumber"
cat >"$ROOTCA/ca.cnf" <<CNF
[ ca ]
default_ca = root
[ root ]
database = $ROOTCA/index.txt
crlnumber = $ROOTCA/crlnumber
certificate = $D/ca/root-ca.crt
private_key = $D/ca/root-ca.key
default_md = sha256
default_crl_days = 30
CNF
openssl ca -config "$ROOTCA/ca.cnf" -gencrl -out "$ROOTCA/crl.pem" 2>/dev/null

NG="$BENCH_TMP/nginx"
NGPORT=$((20000 + RANDOM % 20000))
nginx_conf "$NG" "$D" "$NGPORT" "ssl_crl $NG/crl.pem;"

run_load() { # HOST:PORT PID
    s_time_load "$1" "$2" "$SECS" "$CLIENTS" "$BENCH_TMP/client.crt" "$BENCH_TMP/client.key" "$D/ca/root-ca.crt"
}

elapsed_ms() { # since $1 (date +%s%N)
    echo $((($(date +%s%N) - $1) / 1000000))
}

# copy_level N: a copy of the (stopped) server's data directory and of the
# renewal chains' files as they are now, for the renewal rounds (section 5).
LEVELS=()
copy_level() {
    local n=$1 c
    cp -a "$D" "$BENCH_TMP/level-$n"
    mkdir -p "$BENCH_TMP/level-$n.chains"
    for c in "${chains[@]}"; do cp "${c%%:*}" "${c##*:}" "$BENCH_TMP/level-$n.chains/"; done
    LEVELS+=("$n")
}
stop_shomei
copy_level 0
start_shomei "$D" 0 ${CONFIG:+--config "$CONFIG"}
METRICS=$(grep -o 'Metrics (Prometheus): http://[0-9.:]*' "$D.log" | tail -1 | sed 's#.*: ##')

RESULTS="$BENCH_TMP/handshakes.txt"
: >"$RESULTS"
have=0
for n in 0 10000 100000 1000000; do
    [ "$n" -le "$MAX" ] || continue
    want 1 || [ "$n" -gt "$have" ] || continue
    if [ "$n" -gt "$have" ]; then
        stop_shomei
        # Revoked records, plus one unrevoked per ten for OCSP's "good" answers.
        python3 "$HERE/seed_revoked.py" "$D/shomei.db" $((n - have)) $(((n - have) / 10)) "$INDEX" "$SERIALS"
        have=$n
        copy_level "$n"
        t0=$(date +%s%N)
        start_shomei "$D" 0 ${CONFIG:+--config "$CONFIG"}
        startup=$(elapsed_ms "$t0")
        METRICS=$(grep -o 'Metrics (Prometheus): http://[0-9.:]*' "$D.log" | tail -1 | sed 's#.*: ##')
    else
        startup="-"
    fi
    loaded=$(grep -o 'revocation set loaded.*' "$D.log" | tail -1 | grep -o 'ms=[0-9]*' | grep -o '[0-9]*$' || echo "?")
    want 1 || continue
    # nginx gets the same entries as a CRL (ours; openssl ca's is slower to make).
    "$SHOMEI" crl export --data-dir "$D" --out "$NG/crl.der" >/dev/null 2>&1
    openssl crl -inform DER -in "$NG/crl.der" -out "$NG/crl.pem"
    cat "$ROOTCA/crl.pem" >>"$NG/crl.pem"
    taskset -c 0 nginx -p "$NG" -c "$NG/nginx.conf" &
    NGINX_MASTER=$!
    for _ in $(seq 1 100); do [ -s "$NG/nginx.pid" ] && pgrep -P "$(cat "$NG/nginx.pid")" >/dev/null && break; sleep 0.1; done
    NGINX_WORKER=$(pgrep -P "$(cat "$NG/nginx.pid")" | head -1)
    # Both accept the valid certificate before the load.
    curl -sS --fail -o /dev/null --cacert "$D/ca/root-ca.crt" --cert "$BENCH_TMP/client.crt" --key "$BENCH_TMP/client.key" "$CERT/cert-login"
    curl -sS --fail -o /dev/null --cacert "$D/ca/root-ca.crt" --cert "$BENCH_TMP/client.crt" --key "$BENCH_TMP/client.key" "https://localhost:$NGPORT/"
    read -r s_n s_cpu s_rate < <(run_load "localhost:${CERT##*:}" "$SHOMEI_PID")
    read -r n_n n_cpu n_rate < <(run_load "localhost:$NGPORT" "$NGINX_WORKER")
    rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$SHOMEI_PID/status")
    nginx_rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$NGINX_WORKER/status")
    kill "$NGINX_MASTER" 2>/dev/null || true
    wait "$NGINX_MASTER" 2>/dev/null || true
    rm -f "$NG/nginx.pid"
    echo "$n $s_cpu $s_rate $n_cpu $n_rate $startup $loaded $rss $nginx_rss" >>"$RESULTS"
    echo "  $n revoked: handshakes done" >&2
done

# 5. Renewals (each revokes the superseded certificate), on the copies of
# every level at once: ROUNDS rounds; each server is on core 0 and idle
# while another is measured. The two levels a round's ratio compares (0
# and the largest) run back to back, first in the round, the other levels
# after them, and every other round in the reverse order (largest first):
# what the machine's noise does over a round hits the two alike.
declare -A L_PID L_CERT L_METRICS L_CHAINS
want 5 || LEVELS=()
# start_shomei sets these: the main server's are kept for sections 2-4 and 6.
MAIN=("$SHOMEI_PID" "$PORTAL" "$CERT" "$PKI")
for n in "${LEVELS[@]}"; do
    start_shomei "$BENCH_TMP/level-$n" 0 ${CONFIG:+--config "$CONFIG"}
    L_PID[$n]=$SHOMEI_PID
    L_CERT[$n]=$CERT
    L_METRICS[$n]=$(grep -o 'Metrics (Prometheus): http://[0-9.:]*' "$BENCH_TMP/level-$n.log" | tail -1 | sed 's#.*: ##')
    L_CHAINS[$n]=""
    for c in "${chains[@]}"; do
        L_CHAINS[$n]+=" $BENCH_TMP/level-$n.chains/$(basename "${c%%:*}"):$BENCH_TMP/level-$n.chains/$(basename "${c##*:}")"
    done
done
generation_seconds() { curl -s "$1/metrics" | awk '/^shomei_crl_generation_seconds_total / {print $2}'; }
# A warm-up run per level first (WARMUP seconds, default 5; not counted):
# what a server does once after its start (the first signing of every
# partition into fresh buffers, its first upkeep pass) is not a renewal's cost.
if want 5 && [ "${WARMUP:-5}" -gt 0 ]; then
    for n in "${LEVELS[@]}"; do
        # shellcheck disable=SC2086 # the chains are words
        taskset -c 1 "$LOAD" renew "$BENCH_TMP/level-$n/ca/root-ca.crt" "127.0.0.1:${L_CERT[$n]##*:}" "${WARMUP:-5}" ${L_CHAINS[$n]} >/dev/null
    done
    echo "  renewal warm-up done" >&2
fi
for r in $(seq 1 "$ROUNDS"); do
    want 5 || break
    # 0, the largest, then the levels between (and reversed: the largest,
    # 0, then the levels between from the top down).
    last=$((${#LEVELS[@]} - 1))
    if [ "$last" = 0 ]; then
        order=("${LEVELS[0]}")
    elif [ $((r % 2)) = 1 ]; then
        order=("${LEVELS[0]}" "${LEVELS[$last]}" "${LEVELS[@]:1:$((last - 1))}")
    else
        order=("${LEVELS[$last]}" "${LEVELS[0]}")
        for ((i = last - 1; i >= 1; i--)); do order+=("${LEVELS[$i]}"); done
    fi
    for n in "${order[@]}"; do
        gen_before=$(generation_seconds "${L_METRICS[$n]}")
        before=$(cpu_ticks "${L_PID[$n]}")
        # shellcheck disable=SC2086 # the chains are words
        read -r r_ops r_secs _ < <(taskset -c 1 "$LOAD" renew "$BENCH_TMP/level-$n/ca/root-ca.crt" "127.0.0.1:${L_CERT[$n]##*:}" "$SECS" ${L_CHAINS[$n]})
        after=$(cpu_ticks "${L_PID[$n]}")
        gen_after=$(generation_seconds "${L_METRICS[$n]}")
        echo "$r $n $r_ops $r_secs $((after - before)) $gen_before $gen_after" >>"$RENEWALS"
    done
    echo "  renewal round $r done" >&2
done
for n in "${LEVELS[@]}"; do
    kill "${L_PID[$n]}"
    wait "${L_PID[$n]}" 2>/dev/null || true
    rm -rf "$BENCH_TMP/level-$n"
done
SHOMEI_PID=${MAIN[0]} PORTAL=${MAIN[1]} CERT=${MAIN[2]} PKI=${MAIN[3]}

if want 2; then
# 2. Revocation → enforced latency, with everything above revoked.
python3 "$HERE/revocation_latency.py" "$PORTAL" "$CERT" "$PKI" "$D/ca" "$BENCH_TMP/lat" 30 >"$BENCH_TMP/latency.txt"
fi
if want 3; then
# 3. CRL generation: the same revoked entries, both tools, time and peak RSS.
OCA="$BENCH_TMP/openssl-ca"
mkdir -p "$OCA"
echo 01 >"$OCA/crlnumber"
grep '^R' "$INDEX" >"$OCA/index.txt" || true
echo "unique_subject = no" >"$OCA/index.txt.attr"
cat >"$OCA/ca.cnf" <<CNF
[ ca ]
default_ca = issuing
[ issuing ]
database = $OCA/index.txt
crlnumber = $OCA/crlnumber
certificate = $D/ca/issuing-ca.crt
private_key = $D/ca/issuing-ca.key
default_md = sha256
default_crl_days = 1
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
/usr/bin/time -f "%e %M" -o "$BENCH_TMP/gen.shomei" "$SHOMEI" crl export --data-dir "$D" --out "$BENCH_TMP/shomei-crl.der" >/dev/null 2>&1
/usr/bin/time -f "%e %M" -o "$BENCH_TMP/gen.openssl" openssl ca -config "$OCA/ca.cnf" -gencrl -out "$BENCH_TMP/openssl-crl.pem" 2>/dev/null
s_entries=$(openssl crl -inform DER -in "$BENCH_TMP/shomei-crl.der" -noout -text | grep -c 'Serial Number' || true)
o_entries=$(openssl crl -in "$BENCH_TMP/openssl-crl.pem" -noout -text | grep -c 'Serial Number' || true)
read -r gs_t gs_kb <"$BENCH_TMP/gen.shomei"
read -r go_t go_kb <"$BENCH_TMP/gen.openssl"
fi
if want 4; then
# 4. OCSP: the same serials (revoked and not), random picks; Shomei's PKI
# listener beside openssl ocsp's responder on the same index, both on core 0
# (the same core for both), the load on core 1, in ROUNDS rounds whose
# order alternates. Then every good certificate is asked about once, for
# the memory its pre-signed answer takes.
shuf -n 20000 "$SERIALS" >"$BENCH_TMP/ocsp-serials.txt"
OPORT=$((20000 + RANDOM % 20000))
# openssl ocsp -multi stops accepting once its standard input is at EOF:
# give it a FIFO this shell holds open.
mkfifo "$BENCH_TMP/ocspd.in"
exec 9<>"$BENCH_TMP/ocspd.in"
taskset -c 0 openssl ocsp -index "$INDEX" -port "$OPORT" -rsigner "$D/ca/ocsp-signer.crt" -rkey "$D/ca/ocsp-signer.key" \
    -CA "$D/ca/issuing-ca.crt" -multi 2 -nmin 60 <"$BENCH_TMP/ocspd.in" >"$BENCH_TMP/ocspd.log" 2>&1 &
OCSPD=$!
# With -multi it leads its own process group (and fails if it already leads
# a session, so no setsid): stop the whole group, workers too, at the end.
GROUPS_TO_KILL+=("$OCSPD")
# (No probe request: a malformed one makes its worker give up.)
for _ in $(seq 1 100); do
    if ss -ltn | grep -q ":$OPORT "; then break; fi
    sleep 0.2
done
ocsp_run() { # TARGET new|keep|each SERIALS PIDS… ; prints "responses cpu_ticks seconds refused"
    local target=$1 how=$2 list=$3
    shift 3
    local before=0 after=0 p secs=$SECS
    [ "$how" != each ] || secs=600
    for p in "$@"; do before=$((before + $(cpu_ticks "$p"))); done
    read -r ops took refused < <(taskset -c 1 "$LOAD" ocsp "$target" "$secs" 32 "$D/ca/issuing-ca.crt" "$list" "$how")
    for p in "$@"; do after=$((after + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
    echo "$ops $((after - before)) $took $refused"
}
ocspd_pids() { echo "$OCSPD" $(pgrep -P "$OCSPD" || true); }
SHOMEI_OCSP="127.0.0.1:${PKI##*:}/pki/ocsp"
OCSP_ROWS="$BENCH_TMP/ocsp.txt"
: >"$OCSP_ROWS"
# The warm-up, not counted: the seeded certificates were not issued by this
# server, so their pre-signed answers are made at their first question.
if [ "${WARMUP:-5}" -gt 0 ]; then
    ocsp_run "$SHOMEI_OCSP" each "$BENCH_TMP/ocsp-serials.txt" "$SHOMEI_PID" >/dev/null
    SECS=${WARMUP:-5} ocsp_run "127.0.0.1:$OPORT/" new "$BENCH_TMP/ocsp-serials.txt" $(ocspd_pids) >/dev/null
fi
for r in $(seq 1 "$ROUNDS"); do
    order=(shomei openssl)
    [ $((r % 2)) = 1 ] || order=(openssl shomei)
    for who in "${order[@]}"; do
        if [ "$who" = shomei ]; then
            for how in new keep; do
                echo "$r shomei-$how $(ocsp_run "$SHOMEI_OCSP" "$how" "$BENCH_TMP/ocsp-serials.txt" "$SHOMEI_PID")" >>"$OCSP_ROWS"
            done
        else
            echo "$r openssl-new $(ocsp_run "127.0.0.1:$OPORT/" new "$BENCH_TMP/ocsp-serials.txt" $(ocspd_pids))" >>"$OCSP_ROWS"
        fi
    done
done
# Memory: every good (unrevoked) certificate asked about once.
grep '^V' "$INDEX" | cut -f4 >"$BENCH_TMP/good-serials.txt" || true
presigned() { curl -s "$METRICS/metrics" | awk '/^shomei_ocsp_presigned_responses / {print $2}'; }
m_rss0=$(awk '/VmRSS/ {print $2}' "/proc/$SHOMEI_PID/status")
m_kept0=$(presigned)
read -r m_ops _ m_secs _ < <(ocsp_run "$SHOMEI_OCSP" each "$BENCH_TMP/good-serials.txt" "$SHOMEI_PID")
m_rss1=$(awk '/VmRSS/ {print $2}' "/proc/$SHOMEI_PID/status")
m_kept1=$(presigned)
fi
if want 1; then
echo
echo "1. Certificate-method TLS 1.3 full handshakes (P-256 client certificate), ${SECS}s, $CLIENTS s_time clients on core 1, server on core 0"
printf '%10s | %14s %10s %10s %10s %9s | %14s %10s %9s\n' "revoked" "Shomei CPU/hs" "hs/s" "start ms" "set ms" "RSS MB" "nginx CPU/hs" "hs/s" "RSS MB"
base=""
nginx0=""
while read -r n s_cpu s_rate n_cpu n_rate startup loaded rss nrss; do
    printf '%10s | %11s ms %10s %10s %10s %9s | %11s ms %10s %9s\n' "$n" "$s_cpu" "$s_rate" "$startup" "$loaded" "$rss" "$n_cpu" "$n_rate" "$nrss"
    [ -n "$base" ] || base=$s_cpu
    [ -n "$nginx0" ] || nginx0=$n_cpu
    last=$s_cpu
    last_n=$n
done <"$RESULTS"
awk -v a="$last" -v b="$base" -v c="$nginx0" -v n="$last_n" 'BEGIN {
    printf "Shomei at %s / Shomei at 0: %.2f (target <= 1.10); Shomei at %s / nginx at 0: %.2f (target <= 0.50)\n", n, a / b, n, a / c }'
fi
if want 2; then
echo
echo "2. Revocation → enforced, with $have revoked (from portal 実行 returned)"
cat "$BENCH_TMP/latency.txt"
fi
if want 3; then
echo
echo "3. CRL generation, $have entries"
printf '%-36s %10s %12s %10s\n' "tool" "seconds" "peak RSS MB" "entries"
printf '%-36s %10s %12d %10s\n' "shomei crl export" "$gs_t" $((gs_kb / 1024)) "$s_entries"
printf '%-36s %10s %12d %10s\n' "openssl ca -gencrl" "$go_t" $((go_kb / 1024)) "$o_entries"
awk -v st="$gs_t" -v ot="$go_t" -v sm="$gs_kb" -v om="$go_kb" 'BEGIN {
    printf "openssl / Shomei time: %.1f x (target >= 5); Shomei / openssl memory: %.2f (target <= 0.25)\n", ot / st, sm / om }'
fi
if want 4; then
echo
echo "4. OCSP, random picks among 20,000 issued serials (revoked and good), 32 connections from core 1, ${SECS}s a run, $ROUNDS rounds (order alternating) after a warm-up; both responders on core 0"
printf '%-46s %10s %12s %16s %9s\n' "responder" "responses" "responses/s" "server CPU/resp" "refused"
for row in "shomei-new:Shomei PKI listener, new connection each" "shomei-keep:Shomei PKI listener, keep-alive" "openssl-new:openssl ocsp -multi 2, new connection each"; do
    awk -v w="${row%%:*}" -v label="${row#*:}" -v hz="$TICK" '$2 == w { n += $3; t += $4; s += $5; f += $6 }
        END { printf "%-46s %10d %12.0f %13.1f us %9d\n", label, n, n / s, (n ? t * 1e6 / hz / n : 0), f }' "$OCSP_ROWS"
done
awk -v hz="$TICK" '
    { rate[$1, $2] = $3 / $5; cpu[$1, $2] = $4 / hz / $3; rounds[$1] = 1 }
    END {
        for (r = 1; (r in rounds); r++) {
            n = n sprintf(" %.1f", rate[r, "shomei-new"] / rate[r, "openssl-new"])
            k = k sprintf(" %.1f", rate[r, "shomei-keep"] / rate[r, "openssl-new"])
            c = c sprintf(" %.1f", cpu[r, "openssl-new"] / cpu[r, "shomei-new"])
            ck = ck sprintf(" %.1f", cpu[r, "openssl-new"] / cpu[r, "shomei-keep"])
        }
        printf "responses/s, Shomei / openssl: new connections each round:%s; Shomei keep-alive each round:%s (target >= 5)\n", n, k
        printf "server CPU per response (what one core answers), openssl / Shomei: new connections each round:%s; Shomei keep-alive each round:%s\n", c, ck
        printf "(the load tool on core 1 sets responses/s when a responder is not busy: see the CPU per response)\n"
    }' "$OCSP_ROWS"
awk -v a="$m_rss0" -v b="$m_rss1" -v k0="$m_kept0" -v k1="$m_kept1" -v n="$m_ops" -v s="$m_secs" 'BEGIN {
    printf "every good certificate asked once (%d, %.0f/s): pre-signed answers %d -> %d, RSS %.1f -> %.1f MB: %.0f bytes per certificate in force\n",
        n, n / s, k0, k1, a / 1024, b / 1024, (k1 > k0 ? (b - a) * 1024 / (k1 - k0) : 0) }'
fi
if want 5; then
echo
echo "5. EST renewals (each one revokes the superseded certificate and re-signs its CRL partition), ${SECS}s, ${#chains[@]} chains from core 1, server on core 0, $ROUNDS rounds (levels side by side; 0 and the largest back to back, order alternating)"
printf '%10s | %10s %12s %18s %22s\n' "revoked" "renewals" "renewals/s" "server CPU/renewal" "CRL signing/renewal"
# Per level, all rounds summed.
for n in "${LEVELS[@]}"; do
    awk -v n="$n" -v hz="$TICK" '$2 == n { o += $3; s += $4; t += $5; g += $7 - $6 }
        END { printf "%10s | %10d %12.0f %15.3f ms %19.3f ms\n", n, o, o / s, t * 1000 / hz / o, g * 1000 / o }' "$RENEWALS"
done
top=${LEVELS[-1]}
awk -v top="$top" -v hz="$TICK" '
    { cpu[$1, $2] = $5 * 1000 / hz / $3; rounds[$1] = 1 }
    $2 == 0 { zo += $3; zt += $5 } $2 == top { to += $3; tt += $5 }
    END {
        line = ""; worst = 0
        for (r = 1; (r in rounds); r++) { q = cpu[r, top] / cpu[r, 0]; line = line sprintf(" %.2f", q); if (q > worst) worst = q }
        printf "CPU per renewal at %s / at 0: %.2f over all rounds; each round:%s; worst %.2f (target <= 1.20 in every round)\n",
            top, (tt / to) / (zt / zo), line, worst }' "$RENEWALS"
fi
if want 6; then
echo
echo "6. CRL sizes with $have revoked, $(curl -s "$METRICS/metrics" | awk '/^shomei_crl_partitions / {print $2}') CRLs published"
curl -s "$METRICS/metrics" | awk '
    /^shomei_crl_bytes\{/ { n++; b = $2; sum += b; if (b > max) max = b; if (min == "" || b < min) min = b }
    /^shomei_crl_entries\{/ { e += $2 }
    END { printf "per partition: smallest %.2f MB, largest %.2f MB (target <= 2 MB); all %d together: %.1f MB, %d entries\n", min / 1e6, max / 1e6, n, sum / 1e6, e }'
bundle=$(curl -s "$PKI/pki/crls.pem" | wc -c)
printf 'the PEM bundle of all of them (/pki/crls.pem): %.1f MB\n' "$(awk -v b="$bundle" 'BEGIN { print b / 1e6 }')"
printf 'one undivided CRL of the same entries (shomei crl export): %.1f MB\n' "$(awk -v b="$(wc -c <"$BENCH_TMP/shomei-crl.der")" 'BEGIN { print b / 1e6 }')"
fi
