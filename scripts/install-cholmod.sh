#!/usr/bin/env bash
# Best effort: CHOLMOD for the native engine (supernodal Cholesky, 2-3x faster than SuperLU on
# large tiles; bench/bench_factor.py), on an optimized BLAS. Installs Debian's SuiteSparse
# headers and OpenBLAS, selects OpenBLAS as the system's libblas.so.3 and liblapack.so.3
# (Debian's libcholmod calls libblas.so.3, which on a fresh machine is netlib's reference
# BLAS: the whole T of a 1024² tile takes about twice as long on it), and builds
# scikit-sparse into .venv. Without it the engine uses scipy's SuperLU: nothing fails.
# Idempotent: each step does nothing when it is done already.
set -uo pipefail
cd "$(dirname "$0")/.."

# root, or sudo without a password prompt; otherwise nothing is changed and the commands to
# run as root are printed at the end (the rest of the set-up goes on)
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    as_root=(none)
fi
todo=()
root_run() {  # run "$@" as root, or record it for the note at the end
    if [ "${as_root[0]:-}" = none ]; then
        todo+=("$*")
        return 1
    fi
    "${as_root[@]}" "$@"
}
apt_install() {  # on a fresh machine the package lists may be empty: update once, retry
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
    if [ "${as_root[0]:-}" = none ]; then
        todo+=("apt-get install -y --no-install-recommends $*")
        return 1
    fi
    "${as_root[@]}" "${install[@]}" >/dev/null 2>&1 && return 0
    "${as_root[@]}" apt-get update -qq >/dev/null 2>&1
    "${as_root[@]}" "${install[@]}" >/dev/null 2>&1 \
        || { echo "note: apt-get install $* failed" >&2; return 1; }
}

if command -v apt-get >/dev/null 2>&1; then
    arch=$(gcc -print-multiarch 2>/dev/null || python3 -c "import sysconfig; print(sysconfig.get_config_var('MULTIARCH') or '')")
    arch=${arch:-x86_64-linux-gnu}
    openblas=/usr/lib/$arch/openblas-pthread
    [ -f "$openblas/libblas.so.3" ] || apt_install libopenblas0-pthread
    for lib in libblas.so.3 liblapack.so.3; do
        target=$openblas/$lib
        if [ ! -f "$target" ]; then  # not installed (not root): select it once it is
            [ "${as_root[0]:-}" != none ] || todo+=("update-alternatives --set $lib-$arch $target")
        elif [ "$(readlink -f "/usr/lib/$arch/$lib")" != "$(readlink -f "$target")" ]; then
            root_run update-alternatives --set "$lib-$arch" "$target" >/dev/null 2>&1 \
                || [ "${as_root[0]:-}" = none ] \
                || echo "note: could not select OpenBLAS as $lib (update-alternatives --set $lib-$arch $target)" >&2
        fi
    done
    [ -f /usr/include/suitesparse/cholmod.h ] || apt_install libsuitesparse-dev
fi
if ! .venv/bin/python -c "import sksparse.cholmod" >/dev/null 2>&1 && [ -f /usr/include/suitesparse/cholmod.h ]; then
    .venv/bin/python -m pip install -q -e ".[cholmod]" >/dev/null 2>&1 || true
fi
if .venv/bin/python -c "import sksparse.cholmod" >/dev/null 2>&1; then
    blas=$(.venv/bin/python -c "from circuitsim.tile.factor import blas_kind, cholmod_blas as b; print(f'{blas_kind(b())}: {b()}')" 2>/dev/null)
    echo "CHOLMOD (scikit-sparse) installed: the native engine uses it, on ${blas:-an unknown BLAS}"
else
    echo "note: CHOLMOD (scikit-sparse) not installed; the native engine uses scipy's SuperLU" >&2
fi
if [ "${#todo[@]}" -gt 0 ]; then
    echo "note: not root and no password-less sudo, so OpenBLAS/SuiteSparse were not installed or selected;" \
         "as root run:" >&2
    printf '    %s\n' "${todo[@]}" >&2
    echo "  then: bash scripts/install-cholmod.sh   (circuitsim doctor names the BLAS CHOLMOD uses)" >&2
fi
exit 0
