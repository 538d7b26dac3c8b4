#!/usr/bin/env bash
# Sets up ./.venv and runs the seed tutorial "Search Image by Image" (examples/search_image_by_image.sql)
# on embedded defaults, in ./thanosql-workspace (or $THANOSQL_HOME).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/thanosql run examples/search_image_by_image.sql
