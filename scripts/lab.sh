#!/usr/bin/env bash
# Start JupyterLab on the course, as a student or as an instructor.
#
#   scripts/lab.sh student     # the student's workspace student/; Validate and Assignment List only
#   scripts/lab.sh instructor  # the repository; formgrader, Create Assignment, Course List
#
# The student's workspace ($CNNLAB_STUDENT_DIR, default student/ here, git-ignored) is never the
# release folder notebooks/ (which `python -m autograder release` and formgrader's Generate
# rewrite): JupyterLab shows the workspace, and the Assignment List fetches into it, submits from
# it and fetches feedback into it. Assignments nobody released through the exchange are copied into
# it from notebooks/ the first time (never over a file that is there).
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
  export CNNLAB_STUDENT_DIR="${CNNLAB_STUDENT_DIR:-$PWD/student}"
  mkdir -p "$CNNLAB_STUDENT_DIR"
  export CNNLAB_STUDENT_DIR="$(cd "$CNNLAB_STUDENT_DIR" && pwd -P)"
  .venv/bin/python -m autograder.hub.workspace "$CNNLAB_STUDENT_DIR" --notebooks "$PWD/notebooks"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the clone's autograder and cnnlab, from the workspace
  cd "$CNNLAB_STUDENT_DIR"     # nbgrader reads a config in the server's folder: not the instructor's
  exec jupyter lab --ServerApp.root_dir="$CNNLAB_STUDENT_DIR" "$@"
fi
exec jupyter lab --ServerApp.root_dir="$PWD" "$@"
