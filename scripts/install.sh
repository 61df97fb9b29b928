#!/usr/bin/env bash
# Install implicitbias (editable) with the given extras, e.g.  bash scripts/install.sh test docs
#
# PyTorch first: when torch is missing, install the CPU build torch==2.13.0 (on the project's
# machines it lies on local disk; a plain `pip install torch` would pull a multi-GB CUDA build).
# An already installed torch in the supported range (>=2.1,<3) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "[install] torch not found: installing torch==2.13.0 (CPU build)"
    "$PY" -m pip install --disable-pip-version-check -q "torch==2.13.0"
fi
extras=""
if [ "$#" -gt 0 ]; then
    extras="[$(IFS=,; echo "$*")]"
fi
echo "[install] pip install -e .${extras}"
"$PY" -m pip install --disable-pip-version-check -q -e ".${extras}"
# pyenv keeps console scripts behind shims: make `implicitbias` visible at once.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
