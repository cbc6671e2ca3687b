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

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 || true
}

if command -v apt-get >/dev/null 2>&1; then
    arch=$(gcc -print-multiarch 2>/dev/null || python3 -c "import sysconfig; print(sysconfig.get_config_var('MULTIARCH') or '')")
    arch=${arch:-x86_64-linux-gnu}
    openblas=/usr/lib/$arch/openblas-pthread
    [ -f "$openblas/libblas.so.3" ] || apt_install libopenblas0-pthread
    for lib in libblas.so.3 liblapack.so.3; do
        if [ -f "$openblas/$lib" ] && [ "$(readlink -f "/usr/lib/$arch/$lib")" != "$(readlink -f "$openblas/$lib")" ]; then
            $sudo update-alternatives --set "$lib-$arch" "$openblas/$lib" >/dev/null 2>&1 \
                || echo "note: could not select OpenBLAS as $lib (update-alternatives)" >&2
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
exit 0
