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
    # the distribution was called circuitsim before it became aimc-circuitsim: drop the old record
    .venv/bin/python -m pip uninstall -q -y circuitsim >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
fi
bash scripts/install-cholmod.sh
