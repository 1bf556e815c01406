#!/usr/bin/env bash
# Set up, then run the CPU test suite of labcore and every package in one pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY="${LAB_VENV:-.venv}/bin/python"; [[ "${LAB_VENV:-}" == "none" ]] && PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
# tiny test models gain nothing from intra-op threads, and oversubscribed 2-core runners lose a lot
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
set +e
"$PY" -m pytest --import-mode=importlib -m "not gpu and not slow" shared/tests packages/*/tests tests "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 1
fi
exit $rc
