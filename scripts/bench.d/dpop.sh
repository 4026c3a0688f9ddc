#!/usr/bin/env bash
# DPoP cost (not part of CI; scripts/bench runs it unless BENCH_SKIP has "dpop"): the same
# ES256 token, cached, sent N times as `Bearer` (auth_jwt_dpop off) and N times as `DPoP`
# with N one-use ES256 proofs, against NGINX with the module (release build, 1 worker).
# Prints worker CPU µs per request for each, the difference, `openssl speed` ECDSA P-256
# verify cost, and the goal: DPoP <= Bearer + one verify + 10%.
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
"$NGINX" -p "$TMP" -c conf/nginx.conf
sleep 0.5
worker=$(pgrep -P "$(cat "$TMP/logs/nginx.pid")" | head -1)
ticks() { sed 's/^.*) //' "/proc/$worker/stat" | awk '{ print $12 + $13 }'; }
HZ=$(getconf CLK_TCK)
run() { # scheme -> "requests cpu_us_per_request non_2xx"
    local before after out reqs bad
    before=$(ticks)
    out=$(BENCH_DIR=$TMP BENCH_SCHEME=$1 wrk -t1 -c16 -d"${BENCH_DPOP_SECONDS:-30}s" --timeout 5s -s scripts/bench.d/dpop.lua \
        "http://127.0.0.1:$PORT/")
    after=$(ticks)
    reqs=$(echo "$out" | sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p')
    bad=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p')
    awk -v r="$reqs" -v t=$((after - before)) -v hz="$HZ" -v bad="${bad:-0}" 'BEGIN { printf "%d %.2f %d\n", r, t * 1e6 / hz / r, bad }'
}
# Warm the token cache, then measure.
curl -s -o /dev/null -H "Authorization: Bearer $(cat "$TMP/token.txt")" "http://127.0.0.1:$PORT/bearer/"
read -r breqs bearer bbad < <(run Bearer)
read -r dreqs dpop dbad < <(run DPoP)
verify=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ { print 1e6 / $NF; exit }')
awk -v b="$bearer" -v d="$dpop" -v v="$verify" -v br="$breqs" -v dr="$dreqs" 'BEGIN {
    printf "| request | requests | worker CPU µs/request |\n|---|---|---|\n"
    printf "| Bearer (cached token) | %d | %.2f |\n| DPoP (cached token + proof) | %d | %.2f |\n", br, b, dr, d
    printf "\nDPoP extra: %.2f µs; openssl speed ECDSA P-256 verify: %.2f µs\n", d - b, v
    printf "ratio DPoP / Bearer: %.2f; budget (Bearer + verify) x 1.10 = %.2f µs: %s\n", d / b, (b + v) * 1.1, (d <= (b + v) * 1.1) ? "PASS" : "FAIL"
}'
echo "non-2xx answers: Bearer $bbad, DPoP $dbad (must be 0: every proof used once)"
if [ "$((bbad + dbad))" -gt 0 ]; then grep -m3 "auth_jwt" "$TMP/logs/error.log" >&2 || true; fi
