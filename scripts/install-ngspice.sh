#!/usr/bin/env bash
# Install ngspice >= 42 with its shared library (libngspice0) when it is missing.
#
# On Debian 12 (bookworm) the stable ngspice is 39 (no KLU solver), so the
# bookworm-backports suite is enabled, using the mirror the machine's existing
# apt sources already point at (no host name is written here).
# Idempotent: does nothing when a suitable ngspice is already installed.
set -euo pipefail

min_major=42

ngspice_major() {
    command -v ngspice >/dev/null 2>&1 || { echo 0; return; }
    ngspice -v 2>/dev/null | sed -n 's/.*ngspice-\([0-9]\+\).*/\1/p' | head -n1 | grep . || echo 0
}

have_lib() {
    ldconfig -p 2>/dev/null | grep -q 'libngspice\.so\.0'
}

if [ "$(ngspice_major)" -ge "$min_major" ] && have_lib; then
    echo "ngspice $(ngspice_major) with libngspice already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ngspice >= $min_major not found and apt-get is unavailable;" \
         "install ngspice >= $min_major with its shared library (e.g. conda install -c conda-forge ngspice ngspice-lib)" >&2
    exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

. /etc/os-release
codename="${VERSION_CODENAME:-}"
target_args=()
if [ "${ID:-}" = "debian" ] && [ "$codename" = "bookworm" ]; then
    backports_list=/etc/apt/sources.list.d/circuitsim-backports.sources
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # Reuse the URI of the machine's own main Debian source.
        uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
              | grep -v -- '-security' | grep '/debian/\?$' | head -n1 || true)
        if [ -z "$uri" ]; then
            uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' \
                  | grep -v -- '-security' | grep '/debian/\?$' | head -n1 || true)
        fi
        if [ -z "$uri" ]; then
            echo "error: cannot find a Debian mirror in the apt sources; add ${codename}-backports by hand" >&2
            exit 1
        fi
        keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: %s\n' \
            "$uri" "$codename" "$keyring" | $sudo tee "$backports_list" >/dev/null
        echo "enabled ${codename}-backports from $uri"
    fi
    target_args=(-t "${codename}-backports")
fi

$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${target_args[@]}" ngspice libngspice0 >/dev/null
echo "installed ngspice $(ngspice_major)"
if [ "$(ngspice_major)" -lt "$min_major" ]; then
    echo "error: the installed ngspice is older than $min_major; install a newer one (see README)" >&2
    exit 1
fi
