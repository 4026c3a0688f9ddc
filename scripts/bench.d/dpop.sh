#!/usr/bin/env bash
# DPoP cost (not part of CI; scripts/bench runs it unless BENCH_SKIP has "dpop"): the same
# ES256 token, cached, sent N times as `Bearer` (auth_jwt_dpop off) and N times as `DPoP`
# with N one-use ES256 proofs, against NGINX with the module (release build, 1 worker); then N
# distinct ES256 tokens and N distinct HS256 tokens of the same shape, each a cache miss.
# Prints worker CPU µs per request for each, and the goal DPoP <= (Bearer + one verify) x
# 1.10 with the verify taken two ways: `openssl speed` ECDSA P-256 (a hot loop), and as the
# worker pays it (new ES256 token - new HS256 token + an HMAC), with wrk on another CPU than
# the worker and on the same one. Then the same four kinds under callgrind (instructions, which
# a busy host does not blur), the verify again as new ES256 token - new HS256 token.
#   BENCH_DPOP_PROOFS=20000  proofs (= requests per run; the replay table holds 32k)
#   BENCH_DPOP_SECONDS=30    wrk duration of each run (a run ends early in effect: its
#                            thread stops once every proof is sent; the rest is idle)
#   BENCH_DPOP_CALLGRIND=200 requests of each kind under callgrind (after 10 of warm-up)
#   BENCH_SKIP=build         use the existing release artifacts ("callgrind": skip those runs)
#   BENCH_KEEP=1             keep the temporary directory (tokens, proofs, callgrind outputs)
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
trap '[ -f "$TMP/logs/nginx.pid" ] && kill "$(cat "$TMP/logs/nginx.pid")" 2>/dev/null
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $TMP" >&2; else rm -rf "$TMP"; fi' EXIT
mkdir -p "$TMP/conf" "$TMP/logs"
python3 scripts/bench.d/dpop_mint.py "$TMP" "http://127.0.0.1:$PORT/dpop/" "$N"
conf() { # port [extra main-context lines]
    cat <<CONF
load_module $SO;
${2:-}
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$1;
        auth_jwt_key_file $TMP/jwks.json;
        location /bearer/ { auth_jwt api; auth_jwt_dpop off; empty_gif; }
        location /dpop/ { auth_jwt api; auth_jwt_dpop required window=1h; empty_gif; }
    }
}
CONF
}
conf "$PORT" >"$TMP/conf/nginx.conf"
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
mode() { # other|same -> "bearer dpop bearer_user dpop_user bad breqs dreqs es256 hs256 ereqs hreqs"
    local prefix=() breqs bearer buser bbad dreqs dpop duser dbad ereqs es256 ebad hreqs hs256 hbad
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
    # After DPoP, so that these tokens never push the bound one out of the cache.
    read -r ereqs es256 _ ebad < <(run es256 "${prefix[@]}")
    read -r hreqs hs256 _ hbad < <(run hs256 "${prefix[@]}")
    kill -QUIT "$(cat "$TMP/logs/nginx.pid")"
    for _ in $(seq 50); do [ -f "$TMP/logs/nginx.pid" ] || break; sleep 0.1; done
    echo "$bearer $dpop $buser $duser $((bbad + dbad + ebad + hbad)) $breqs $dreqs $es256 $hs256 $ereqs $hreqs"
}
read -r ob od obu odu obad obr odr oe oh oer ohr < <(mode other)
read -r sb sd sbu sdu sbad sbr sdr se sh ser shr < <(mode same)
verify=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ { print 1e6 / $NF; exit }')
# HMAC-SHA-256 over the HS256 tokens' signing input, the part of their cost the ES256 ones lack.
len=$(head -1 "$TMP/hs256.txt" | sed 's/\.[^.]*$//' | tr -d '\n' | wc -c)
hmac=$(openssl speed -seconds 1 -mr -bytes "$len" -hmac sha256 2>/dev/null |
    awk -F: -v l="$len" '$1 == "+F" && $NF > 0 { printf "%.3f", 1e6 * l / $NF; exit }')
awk -v v="$verify" -v hm="${hmac:-0}" -v oe="$oe" -v oh="$oh" -v oer="$oer" -v ohr="$ohr" -v se="$se" -v sh="$sh" \
    -v ser="$ser" -v shr="$shr" -v ob="$ob" -v od="$od" -v obu="$obu" -v odu="$odu" -v sb="$sb" -v sd="$sd" -v sbu="$sbu" -v sdu="$sdu" \
    -v obr="$obr" -v odr="$odr" -v sbr="$sbr" -v sdr="$sdr" 'function verdict(d, b, verify) { return (d <= (b + verify) * 1.1) ? "PASS" : "FAIL" }
BEGIN {
    printf "| client | request | requests | worker CPU µs/request | of which user |\n|---|---|---:|---:|---:|\n"
    printf "| other CPU | Bearer (cached token) | %d | %.2f | %.2f |\n", obr, ob, obu
    printf "| other CPU | DPoP (cached token + proof) | %d | %.2f | %.2f |\n", odr, od, odu
    printf "| same CPU as the worker | Bearer (cached token) | %d | %.2f | %.2f |\n", sbr, sb, sbu
    printf "| same CPU as the worker | DPoP (cached token + proof) | %d | %.2f | %.2f |\n", sdr, sd, sdu
    printf "| other CPU | Bearer, a new ES256 token each | %d | %.2f | |\n", oer, oe
    printf "| other CPU | Bearer, a new HS256 token each | %d | %.2f | |\n", ohr, oh
    printf "| same CPU as the worker | Bearer, a new ES256 token each | %d | %.2f | |\n", ser, se
    printf "| same CPU as the worker | Bearer, a new HS256 token each | %d | %.2f | |\n", shr, sh
    printf "\nopenssl speed ECDSA P-256 verify: %.2f µs; goal DPoP <= (Bearer + verify) x 1.10\n\n", v
    printf "| client | DPoP | budget | result |\n|---|---:|---:|---|\n"
    printf "| other CPU | %.2f | %.2f | %s |\n", od, (ob + v) * 1.1, verdict(od, ob, v)
    printf "| same CPU as the worker | %.2f | %.2f | %s |\n", sd, (sb + v) * 1.1, verdict(sd, sb, v)
    printf "| other CPU, user CPU only | %.2f | %.2f | %s |\n", odu, (obu + v) * 1.1, verdict(odu, obu, v)
    # The verify as the worker pays it: two tokens alike but for the signature, each a miss.
    ov = oe - oh + hm; sv = se - sh + hm
    printf "\nES256 verify in the worker (new ES256 token - new HS256 token + HMAC %.2f µs): %.2f µs with the client on another CPU, %.2f on the same CPU\n", hm, ov, sv
    printf "goal DPoP <= (Bearer + that verify) x 1.10\n\n"
    printf "| client | DPoP | budget | result |\n|---|---:|---:|---|\n"
    printf "| other CPU, verify in the worker | %.2f | %.2f | %s |\n", od, (ob + ov) * 1.1, verdict(od, ob, ov)
    printf "| same CPU as the worker, verify in the worker | %.2f | %.2f | %s |\n", sd, (sb + sv) * 1.1, verdict(sd, sb, sv)
}'

# Instructions, which a busy host does not blur: each kind on a fresh single-process NGINX under
# callgrind, (W + CG requests) minus (W requests), the main thread only (out-01).
case " ${BENCH_SKIP:-} " in *" callgrind "*) CG=0 ;; *) CG=${BENCH_DPOP_CALLGRIND:-200} ;; esac
cg_total() { # kind count -> total Ir of the main thread
    local dir=$TMP/cg-$1-$2
    mkdir -p "$dir/conf" "$dir/logs"
    conf "$PORT" $'daemon off;\nmaster_process off;' >"$dir/conf/nginx.conf"
    callgrind_nginx "$NGINX" "$dir" "$PORT" "$dir/cg.out" \
        timeout 600 python3 scripts/bench.d/dpop_client.py "$PORT" "$TMP" "$1" "$2" >&2 || return 1
    callgrind_annotate "$dir/cg.out-01" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t { gsub(",", "", $1); t = $1 } END { print t }'
}
W=10
[ "$CG" -le $((N - W)) ] || CG=$((N - W)) # each proof is used once per run
if [ "$CG" -gt 0 ]; then
    declare -A IR=()
    for kind in bearer dpop es256 hs256; do
        a=$(cg_total "$kind" "$W") || a=
        b=$(cg_total "$kind" $((W + CG))) || b=
        [ -n "$a" ] && [ -n "$b" ] || { echo "dpop.sh: callgrind $kind: no totals (see $TMP/cg-$kind-*/valgrind.log)" >&2; CG=0; break; }
        IR[$kind]=$(((b - a) / CG))
    done
fi
if [ "$CG" -gt 0 ]; then
    echo
    echo "Callgrind, instructions per request ($CG requests after $W, one NGINX process each):"
    echo "Bearer ${IR[bearer]}, DPoP ${IR[dpop]}, a new ES256 token ${IR[es256]}, a new HS256 token ${IR[hs256]}"
    awk -v b="${IR[bearer]}" -v d="${IR[dpop]}" -v e="${IR[es256]}" -v h="${IR[hs256]}" 'BEGIN {
        v = e - h; budget = (b + v) * 1.1
        printf "verify in the worker: new ES256 token - new HS256 token = %d (stricter than the verify by the HMAC)\n\n", v
        printf "| check | DPoP | budget (Bearer + verify) x 1.10 | ratio | result |\n|---|---:|---:|---:|---|\n"
        printf "| (callgrind) DPoP Ir/request | %d | %d | %.3f | %s |\n", d, budget, d / budget, (d <= budget) ? "PASS" : "FAIL"
    }'
fi
echo
echo "non-2xx answers: $obad with the client on another CPU, $sbad on the worker's CPU (must be 0: every proof used once)"
if [ "$((obad + sbad))" -gt 0 ]; then grep -m3 "auth_jwt" "$TMP/logs/error.log" >&2 || true; fi
