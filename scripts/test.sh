#!/usr/bin/env bash
# Set up what is missing, then run the whole test suite (ngspice required).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest --ngspice required "$@"
