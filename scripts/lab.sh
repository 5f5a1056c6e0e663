#!/usr/bin/env bash
# Start JupyterLab on the course, as a student or as an instructor.
#
#   scripts/lab.sh student     # notebooks/; Validate and Assignment List only
#   scripts/lab.sh instructor  # the repository; formgrader, Create Assignment, Course List
#
# Both load the course's one nbgrader configuration (autograder/nbgrader_config.py, the same as
# `python -m autograder`) through jupyter/<mode>/ on $JUPYTER_CONFIG_PATH. The instructor's work
# folder (gradebook, submitted, autograded, feedback, exchange) is $CNNLAB_COURSE_DIR, default
# course/. Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8899).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  student|instructor) shift ;;
  *) echo "usage: scripts/lab.sh student|instructor [jupyter lab options]" >&2; exit 2 ;;
esac
[ -n "${CNNLAB_SKIP_SETUP:-}" ] || scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # nbgrader runs `alembic` from the environment's bin/
export JUPYTER_CONFIG_PATH="$PWD/jupyter/$mode${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
export CNNLAB_COURSE_DIR="${CNNLAB_COURSE_DIR:-$PWD/course}"
if [ "$mode" = student ]; then
  exec jupyter lab --ServerApp.root_dir="$PWD/notebooks" "$@"
fi
exec jupyter lab --ServerApp.root_dir="$PWD" "$@"
