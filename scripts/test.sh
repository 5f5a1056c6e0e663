#!/usr/bin/env bash
# Run the whole test suite in .venv/ (created first when missing).
# With no arguments: the browser tests (tests/browser: one JupyterLab and chromium at a time) run
# first and serially, then everything else on ${CNNLAB_TEST_WORKERS:-2} workers. With arguments,
# they go to one pytest run as they are (e.g. scripts/test.sh tests/test_grading.py -n 0).
# --fast: the everyday tier (no sandbox, no grading kernel, no browser, no PostgreSQL server, no
# GPU): the tests not marked slow, sandbox, browser, postgres or gpu; arguments after it go to
# pytest (scripts/test.sh --fast tests/test_grading_trust.py). CI runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # nbgrader runs `alembic` from the environment's bin/
if [ "${1:-}" = "--fast" ]; then
  shift
  exec .venv/bin/python -m pytest -n "${CNNLAB_TEST_WORKERS:-2}" -q --ignore=tests/browser \
    -m "not slow and not sandbox and not browser and not postgres and not gpu" "$@"
fi
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest -n "${CNNLAB_TEST_WORKERS:-2}" "$@"
fi
status=0
.venv/bin/python -m pytest -n 0 tests/browser || status=$?
.venv/bin/python -m pytest -n "${CNNLAB_TEST_WORKERS:-2}" --ignore=tests/browser || status=$?
exit "$status"
