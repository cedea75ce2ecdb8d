#!/usr/bin/env bash
# mypy on the contract and the trainer. The four code folders install under `topo` through package-dir, which mypy
# cannot follow, so it reads them through a throwaway `topo/` of links in a temporary folder.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${BIN:-$repo/.venv/bin}
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
mkdir "$shim/topo"
cp "$repo/topo/__init__.py" "$shim/topo/"
for pkg in pipeline trainer store_schema cli; do ln -s "$repo/$pkg" "$shim/topo/$pkg"; done
cd "$shim"
"$BIN/mypy" -p topo.store_schema -p topo.trainer --ignore-missing-imports --cache-dir "$repo/.mypy_cache"
