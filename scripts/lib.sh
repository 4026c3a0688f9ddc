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
