#!/usr/bin/env bash
# Create (or refresh) the virtual environment at .venv/ from the tested lock.
# Idempotent: does nothing when .venv/ already matches requirements-lock.txt and pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "cnnlab needs Python >= 3.11 (nbgrader 0.9.6 requires it); '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi

stamp_want=$(cat requirements-lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat .venv/.cnnlab-stamp 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "Installing the locked packages into .venv/ (first time: a minute or two) ..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "$stamp_want" > .venv/.cnnlab-stamp
echo "Environment ready: .venv/ ($(.venv/bin/python --version))"
