#!/usr/bin/env bash
# The main job: the instructor's end-to-end demo (release, collect the sample class, autograde,
# feedback, export) in a fresh work folder. Extra arguments go to `python -m autograder demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m autograder demo "$@"
