#!/usr/bin/env bash
# Build .venv from nothing (or reuse it): python3.11, the pinned lock installed with
# --no-deps (so nothing unpinned, and never torchvision/torchaudio or CUDA wheels, sneaks
# in), lava-nc made to import on 3.11, and snnsim itself in editable mode.
# A stamp file keyed on the lock's and pyproject's checksums makes a second run instant.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=${PYTHON:-python3.11}
stamp="$VENV/.snnsim-installed"
want=$(cat requirements.lock pyproject.toml tools/setup_env.sh tools/fix_lava.py | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PY" >/dev/null || { echo "setup: $PY not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2; exit 2; }
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade "pip>=23" "setuptools>=69" wheel
# lava-nc 0.10.0 declares Python < 3.11; it runs on 3.11 after tools/fix_lava.py.
pip install -q --no-deps --ignore-requires-python -r requirements.lock lava-nc==0.10.0
"$VENV/bin/python" tools/fix_lava.py
pip install -q --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
