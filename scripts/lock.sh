#!/usr/bin/env bash
# Rewrite requirements-lock.txt from what .venv/ holds now (run after a deliberate upgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
{ sed -n '1,3p' requirements-lock.txt
  .venv/bin/python -m pip freeze --exclude-editable | grep -v '^#' | grep -v '^-e' | sed -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/'
} > requirements-lock.txt.new
mv requirements-lock.txt.new requirements-lock.txt
