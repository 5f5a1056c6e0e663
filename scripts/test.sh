#!/usr/bin/env bash
# Run the whole test suite in .venv/ (created first when missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # nbgrader runs `alembic` from the environment's bin/
exec .venv/bin/python -m pytest -n "${CNNLAB_TEST_WORKERS:-2}" "$@"
