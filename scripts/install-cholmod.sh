#!/usr/bin/env bash
# Best effort: CHOLMOD for the native engine (supernodal Cholesky, 2-3x faster than SuperLU on
# large tiles; bench/bench_factor.py). Installs Debian's SuiteSparse headers and builds
# scikit-sparse into .venv. Without it the engine uses scipy's SuperLU: nothing fails.
# Idempotent: does nothing when scikit-sparse already imports.
set -uo pipefail
cd "$(dirname "$0")/.."

if .venv/bin/python -c "import sksparse.cholmod" >/dev/null 2>&1; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && ! [ -f /usr/include/suitesparse/cholmod.h ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libsuitesparse-dev >/dev/null 2>&1 || true
fi
if [ -f /usr/include/suitesparse/cholmod.h ]; then
    .venv/bin/python -m pip install -q -e ".[cholmod]" >/dev/null 2>&1 || true
fi
if .venv/bin/python -c "import sksparse.cholmod" >/dev/null 2>&1; then
    echo "CHOLMOD (scikit-sparse) installed: the native engine uses it"
else
    echo "note: CHOLMOD (scikit-sparse) not installed; the native engine uses scipy's SuperLU" >&2
fi
exit 0
