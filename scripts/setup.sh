#!/usr/bin/env bash
# Set up this repository on a fresh Linux machine with Python 3.10+.
#
# Creates (or reuses) a virtual environment, installs torch + torchvision first, then labcore
# and every package under packages/ editable with their `test` extras (LAB_EXTRAS) in ONE pip command.
# Re-running it on a set-up machine is fast and harmless.
#
# Environment:
#   LAB_VENV      virtual environment to use (default: .venv; "none" installs into the current python)
#   LAB_TORCH     pip requirement(s) for torch (default: "torch==2.14.1 torchvision==0.29.1")
#   LAB_PACKAGES  space-separated package names to install (default: all of packages/)
#   LAB_EXTRAS    the extra each package is installed with (default: test; the quick start uses demo)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LAB_VENV:-.venv}"
TORCH="${LAB_TORCH:-torch==2.14.1 torchvision==0.29.1}"
EXTRAS="${LAB_EXTRAS:-test}"

if [[ "$VENV" != "none" ]]; then
    if [[ ! -x "$VENV/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
else
    PY="${PYTHON:-python3}"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_install() { "$PY" -m pip install --quiet "$@"; }

# torch first: the pair named by LAB_TORCH, skipped when already satisfied.
# shellcheck disable=SC2086
if ! "$PY" - $TORCH <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
for req in sys.argv[1:]:
    name, _, want = req.partition("==")
    if want and version(name).split("+")[0] != want:
        sys.exit(1)
    version(name)
PYEOF
then
    # the CUDA build of torch and the packages take about 7 GB: say so up front, not as a pip OSError
    free_gb=$("$PY" -c 'import shutil, sys; print(shutil.disk_usage(sys.prefix).free // 2**30)')
    if (( free_gb < 8 )); then
        echo "setup: only ${free_gb} GB free next to $("$PY" -c 'import sys; print(sys.prefix)');" \
             "torch and the packages need about 8 GB. Free some space or point LAB_VENV at a roomier disk." >&2
        exit 1
    fi
    echo "setup: installing $TORCH"
    # shellcheck disable=SC2086
    pip_install $TORCH
fi

targets=("-e" "shared[$EXTRAS]")
for dir in packages/*/; do
    name="$(basename "$dir")"
    if [[ -n "${LAB_PACKAGES:-}" && " ${LAB_PACKAGES} " != *" $name "* ]]; then
        continue
    fi
    [[ -f "$dir/pyproject.toml" ]] && targets+=("-e" "${dir%/}[$EXTRAS]")
done
echo "setup: installing ${targets[*]}"
pip_install "${targets[@]}"
echo "setup: done ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
