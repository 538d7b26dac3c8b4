#!/usr/bin/env bash
# Sets up ./.venv, checks the layering (import-linter contracts in pyproject.toml), and runs the
# whole test suite (real DuckDB, Qdrant Edge, MLflow, Dagster, PostgreSQL).
# Tests read MNIST from ../shared/datasets; nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
