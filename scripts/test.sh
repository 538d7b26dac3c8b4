#!/usr/bin/env bash
# Sets up ./.venv and runs the whole test suite (real DuckDB, Qdrant Edge, MLflow, Dagster).
# Tests read MNIST from ../shared/datasets; nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
