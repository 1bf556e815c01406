#!/usr/bin/env bash
# Set up, then run every package's tiny end-to-end demo; report in runs/REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB_EXTRAS="${LAB_EXTRAS:-demo}" bash scripts/setup.sh  # what the demos need, not the suite's extras
PY="${LAB_VENV:-.venv}/bin/python"; [[ "${LAB_VENV:-}" == "none" ]] && PY="${PYTHON:-python3}"
HF_HUB_OFFLINE=1 "$PY" -m labcore.quickstart --out runs "$@"
