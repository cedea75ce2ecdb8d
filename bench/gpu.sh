#!/usr/bin/env bash
# The prepared GPU measurement (bench/gpu.py): `bench/gpu.sh` on one GPU (<= 8 min), `bench/gpu.sh --dry-run` on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's environment when there is one (make install), else whatever python is first on PATH.
default_python=python3
[ -x .venv/bin/python ] && default_python=.venv/bin/python
exec "${PYTHON:-$default_python}" bench/gpu.py "$@"
