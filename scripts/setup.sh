#!/usr/bin/env bash
# Creates ./.venv with everything the project needs (idempotent: a second run only checks).
# torch/torchvision are pinned to the builds pip finds on this machine's disk (see DEVELOPERS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,k8s]'
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, dagster; print("torch", torch.__version__, "dagster", dagster.__version__)'))"
