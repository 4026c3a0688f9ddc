#!/usr/bin/env bash
# DPoP cost (not part of CI; scripts/bench runs it unless BENCH_SKIP has "dpop"): the same
# ES256 token, cached, sent N times as `Bearer` (auth_jwt_dpop off) and N times as `DPoP`
# with N one-use ES256 proofs, against NGINX with the module (release build, 1 worker).
# Prints worker CPU µs per request for each, the difference, `openssl speed` ECDSA P-256
# verify cost, and the goal: DPoP <= (Bearer + one verify) x 1.10, with wrk on another CPU
# than the worker and on the same one.
#   BENCH_DPOP_PROOFS=20000  proofs (= requests per run; the replay table holds 32k)
#   BENCH_DPOP_SECONDS=30    wrk duration of each run (a run ends early in effect: its
#                            thread stops once every proof is sent; the rest is idle)
#   BENCH_SKIP=build         use the existing release artifacts
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. scripts/lib.sh
N=${BENCH_DPOP_PROOFS:-20000}
PORT=${BENCH_DPOP_PORT:-18480}
case " ${BENCH_SKIP:-} " in *" build "*) ;; *) cargo build --release >&2 ;; esac
NGINX="$ROOT/$(nginx_build_dir release)/nginx"
SO="$ROOT/target/release/libngx_http_auth_jwt_module.so"
TMP=$(mktemp -d /tmp/ngx-auth-jwt-dpop.XXXXXX)
trap '[ -f "$TMP/logs/nginx.pid" ] && kill "$(cat "$TMP/logs/nginx.pid")" 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/conf" "$TMP/logs"
python3 scripts/bench.d/dpop_mint.py "$TMP" "http://127.0.0.1:$PORT/dpop/" "$N"
cat >"$TMP/conf/nginx.conf" <<CONF
load_module $SO;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT;
        auth_jwt_key_file $TMP/jwks.json;
        location /bearer/ { auth_jwt api; auth_jwt_dpop off; empty_gif; }
        location /dpop/ { auth_jwt api; auth_jwt_dpop required window=1h; empty_gif; }
    }
}
CONF
HZ=$(getconf CLK_TCK)
stat() { sed 's/^.*) //' "/proc/$worker/stat" | awk '{ print $12, $13 }'; } # utime stime
run() { # scheme wrk-prefix... -> "requests cpu_us_per_request user_us_per_request non_2xx"
    local scheme=$1 u0 s0 u1 s1 out reqs bad
    shift
    read -r u0 s0 < <(stat)
    out=$(BENCH_DIR=$TMP BENCH_SCHEME=$scheme "$@" wrk -t1 -c16 -d"${BENCH_DPOP_SECONDS:-30}s" --timeout 5s \
        -s scripts/bench.d/dpop.lua "http://127.0.0.1:$PORT/")
    read -r u1 s1 < <(stat)
    reqs=$(echo "$out" | sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p')
    bad=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p')
    awk -v r="$reqs" -v t=$((u1 + s1 - u0 - s0)) -v u=$((u1 - u0)) -v hz="$HZ" -v bad="${bad:-0}" \
        'BEGIN { printf "%d %.2f %.2f %d\n", r, t * 1e6 / hz / r, u * 1e6 / hz / r, bad }'
}
# One mode: a fresh NGINX (an empty replay table: the proofs are used once per mode), the
# token cache warmed, then N Bearer and N DPoP requests. "other": wrk on any CPU; "same": wrk
# and the worker on CPU 0, so that a response never wakes an idle CPU (see README,
# Performance: in a VM that wake-up is an inter-processor interrupt costing the sender 5-20 µs
# of system time, and a DPoP request leaves the client idle for ~70 µs where Bearer does not).
mode() { # other|same -> "| rows |" and "bearer dpop bearer_user dpop_user bad"
    local prefix=() breqs bearer buser bbad dreqs dpop duser dbad
    "$NGINX" -p "$TMP" -c conf/nginx.conf
    sleep 0.5
    worker=$(pgrep -P "$(cat "$TMP/logs/nginx.pid")" | head -1)
    if [ "$1" = same ]; then
        taskset -pc 0 "$worker" >/dev/null
        prefix=(taskset -c 0)
    fi
    curl -s -o /dev/null -H "Authorization: Bearer $(cat "$TMP/token.txt")" "http://127.0.0.1:$PORT/bearer/"
    read -r breqs bearer buser bbad < <(run Bearer "${prefix[@]}")
    read -r dreqs dpop duser dbad < <(run DPoP "${prefix[@]}")
    kill -QUIT "$(cat "$TMP/logs/nginx.pid")"
    for _ in $(seq 50); do [ -f "$TMP/logs/nginx.pid" ] || break; sleep 0.1; done
    echo "$bearer $dpop $buser $duser $((bbad + dbad)) $breqs $dreqs"
}
read -r ob od obu odu obad obr odr < <(mode other)
read -r sb sd sbu sdu sbad sbr sdr < <(mode same)
verify=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ { print 1e6 / $NF; exit }')
awk -v v="$verify" -v ob="$ob" -v od="$od" -v obu="$obu" -v odu="$odu" -v sb="$sb" -v sd="$sd" -v sbu="$sbu" -v sdu="$sdu" \
    -v obr="$obr" -v odr="$odr" -v sbr="$sbr" -v sdr="$sdr" 'function verdict(d, b) { return (d <= (b + v) * 1.1) ? "PASS" : "FAIL" }
BEGIN {
    printf "| client | request | requests | worker CPU µs/request | of which user |\n|---|---|---:|---:|---:|\n"
    printf "| other CPU | Bearer (cached token) | %d | %.2f | %.2f |\n", obr, ob, obu
    printf "| other CPU | DPoP (cached token + proof) | %d | %.2f | %.2f |\n", odr, od, odu
    printf "| same CPU as the worker | Bearer (cached token) | %d | %.2f | %.2f |\n", sbr, sb, sbu
    printf "| same CPU as the worker | DPoP (cached token + proof) | %d | %.2f | %.2f |\n", sdr, sd, sdu
    printf "\nopenssl speed ECDSA P-256 verify: %.2f µs; goal DPoP <= (Bearer + verify) x 1.10\n\n", v
    printf "| client | DPoP | budget | result |\n|---|---:|---:|---|\n"
    printf "| other CPU | %.2f | %.2f | %s |\n", od, (ob + v) * 1.1, verdict(od, ob)
    printf "| same CPU as the worker | %.2f | %.2f | %s |\n", sd, (sb + v) * 1.1, verdict(sd, sb)
    printf "| other CPU, user CPU only | %.2f | %.2f | %s |\n", odu, (obu + v) * 1.1, verdict(odu, obu)
}'
echo
echo "non-2xx answers: $obad with the client on another CPU, $sbad on the worker's CPU (must be 0: every proof used once)"
if [ "$((obad + sbad))" -gt 0 ]; then grep -m3 "auth_jwt" "$TMP/logs/error.log" >&2 || true; fi
