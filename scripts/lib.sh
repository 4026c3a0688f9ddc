# Shared by scripts/run, scripts/test and scripts/bench: install what is missing, find things.
# shellcheck shell=bash

# Installs the Debian packages named in "$@" that are not installed yet, as root;
# otherwise prints the exact command and fails.
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}" >&2
        echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Build dependencies of the module and the vendored NGINX.
BUILD_PACKAGES=(libclang-dev libpcre2-dev zlib1g-dev libssl-dev pkg-config make gcc openssl curl)

# Directory holding the `nginx` binary built by the vendored build for the given profile.
nginx_build_dir() {
    local profile=$1
    local dir
    dir=$(ls -dt target/"$profile"/build/nginx-sys-*/out/objs 2>/dev/null | while read -r d; do
        [ -x "$d/nginx" ] && echo "$d" && break
    done)
    [ -n "$dir" ] || { echo "no nginx binary under target/$profile/build" >&2; return 1; }
    echo "$dir"
}

# Keeps apt from starting services (Debian's nginx on :80) while a script installs packages:
# an /usr/sbin/policy-rc.d that exits 101, made if there is none and removed on exit.
# Call it before ensure_packages in scripts that install nginx.
hold_services() {
    [ "$(id -u)" -eq 0 ] || return 0
    [ -e /usr/sbin/policy-rc.d ] && return 0
    printf '#!/bin/sh\n# made by %s: no service starts during its installs\nexit 101\n' "$0" \
        > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
}

# callgrind_nginx NGINX PREFIX PORT OUT CMD...: runs NGINX (PREFIX/conf/nginx.conf, which must
# say `daemon off; master_process off;`) under callgrind, one output file per thread (OUT-01 is
# the main thread, the request path), waits up to 60 s for PORT to listen, runs CMD (with
# CALLGRIND_PID set to valgrind's pid, for a caller's clean-up on interrupt), then stops
# NGINX (QUIT, KILL after 60 s). Valgrind's log goes to PREFIX/valgrind.log. Fails when NGINX
# did not listen or OUT-01 is missing; a failing CMD is reported on stderr.
callgrind_nginx() {
    local nginx=$1 prefix=$2 port=$3 out=$4 vpid i
    shift 4
    rm -f "$out" "$out"-*
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
        "$nginx" -p "$prefix/" -c conf/nginx.conf >"$prefix/valgrind.log" 2>&1 &
    vpid=$!
    CALLGRIND_PID=$vpid
    for ((i = 0; i < 600; i++)); do
        ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q . && break
        kill -0 "$vpid" 2>/dev/null || break
        sleep 0.1
    done
    if ! ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q .; then
        echo "callgrind: nginx in $prefix did not listen on $port" >&2
        tail -5 "$prefix/valgrind.log" >&2 || true
        kill -KILL "$vpid" 2>/dev/null || true
        return 1
    fi
    "$@" || echo "callgrind: '$*' failed" >&2
    kill -QUIT "$vpid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    [ -s "$out-01" ]
}
