#!/usr/bin/env bash
# The prepared GPU measurement (bench/gpu.py): `bench/gpu.sh` on one GPU (<= 8 min), `bench/gpu.sh --dry-run` on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu.py "$@"
