#!/usr/bin/env bash
# Idempotent set-up: ngspice >= 42 with libngspice, Debian's Fashion-MNIST package,
# a virtual environment in .venv, and circuitsim installed in it (editable, with the
# test extras), and CHOLMOD on OpenBLAS for the native engine when it builds (checked on
# every run: an existing .venv also gets OpenBLAS selected under CHOLMOD).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

bash scripts/install-ngspice.sh
bash scripts/install-datasets.sh

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.circuitsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
fi
bash scripts/install-cholmod.sh
