#!/usr/bin/env bash
# Set up what is missing, then run circuitsim's main job on the embedded default data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/circuitsim main "$@"
