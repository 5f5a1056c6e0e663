#!/usr/bin/env bash
# The course on JupyterHub, on one machine (run as root):
#
#   scripts/hub.sh start                  # set up (first time: a few minutes), start the hub, print its address
#   scripts/hub.sh add-users ROSTER       # a Unix account per roster student (and the roster in the gradebook)
#   scripts/hub.sh add-users --instructor NAME
#   scripts/hub.sh feedback 05_pooling --on --max-attempts 5   # feedback on submit (off by default)
#   scripts/hub.sh status                 # running or not; the processes of this hub
#   scripts/hub.sh stop                   # stop the hub, the proxy, every server and the feedback service
#
# Settings (environment): CNNLAB_HUB_DIR (everything the hub keeps, default /srv/cnnlab-hub: back
# up this one folder), CNNLAB_HUB_ENV (the hub's Python environment, default $CNNLAB_HUB_DIR/env),
# CNNLAB_HUB_PORT (default 18200: the hub uses ports PORT..PORT+99, on 127.0.0.1),
# CNNLAB_HUB_INSTRUCTOR (default instructor), CNNLAB_HUB_GROUP_PREFIX (default cnnlab: the groups
# cnnlab-students and cnnlab-instructors), CNNLAB_HUB_PYTHON (a Python >= 3.11 every account can
# run; default: the system's python3.11 or python3). The first start stores them in
# $CNNLAB_HUB_DIR/hub/settings.env; later commands read them from there.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
cmd=${1:-}
[ -n "$cmd" ] && shift || true

HUB_DIR=${CNNLAB_HUB_DIR:-/srv/cnnlab-hub}
if [ -f "$HUB_DIR/hub/settings.env" ]; then
  # shellcheck disable=SC1091
  . "$HUB_DIR/hub/settings.env"
fi
HUB_ENV=${CNNLAB_HUB_ENV:-${SAVED_HUB_ENV:-$HUB_DIR/env}}
PORT=${CNNLAB_HUB_PORT:-${SAVED_PORT:-18200}}
INSTRUCTOR=${CNNLAB_HUB_INSTRUCTOR:-${SAVED_INSTRUCTOR:-instructor}}
PREFIX=${CNNLAB_HUB_GROUP_PREFIX:-${SAVED_PREFIX:-cnnlab}}
PROXY_DIR="$REPO/jupyter/hub"
PIDFILE="$HUB_DIR/hub/jupyterhub.pid"

die() { echo "hub.sh: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root (sudo scripts/hub.sh $cmd): the hub starts each person's server as their Unix user"; }

hub_python() {
  local cands=("${CNNLAB_HUB_PYTHON:-}" /usr/bin/python3.11 /usr/bin/python3 /usr/local/bin/python3.11 /usr/local/bin/python3)
  for p in "${cands[@]}"; do
    [ -n "$p" ] && [ -x "$p" ] || continue
    "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || continue
    # every account must be able to run it (a Python under /root cannot serve students)
    runuser -u nobody -- "$p" -c 'pass' 2>/dev/null || continue
    echo "$p"; return 0
  done
  return 1
}

setup_env() {
  # The hub's environment: the tested lock and the course package installed (not linked to this
  # clone: students import cnnlab from here and cannot read the repository's solutions/).
  local want have py
  want=$(cat requirements-lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  have=$(cat "$HUB_ENV/.cnnlab-lock" 2>/dev/null || true)
  if [ ! -x "$HUB_ENV/bin/python" ] || [ "$want" != "$have" ]; then
    py=$(hub_python) || die "no Python >= 3.11 that every account can run (one under /root cannot be used by students): install Debian's python3.11 (apt-get install python3.11-venv) or set CNNLAB_HUB_PYTHON"
    echo "Setting up the hub's environment in $HUB_ENV from $py (first time: a few minutes) ..."
    [ -x "$HUB_ENV/bin/python" ] || "$py" -m venv "$HUB_ENV"
    local lock; lock=$(mktemp)
    cp requirements-lock.txt "$lock"
    # Debian 12's python3.11 is 3.11.2; soupsieve >= 3 (for beautifulsoup4) needs 3.11.5's re
    # (3.0.x was yanked for that): 2.8.3 there (the lock's only package with such a limit)
    "$HUB_ENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11, 5))' || \
      sed -i 's/^soupsieve==.*/soupsieve==2.8.3/' "$lock"
    "$HUB_ENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" \
      || { rm -f "$lock"; die "installing the locked packages into $HUB_ENV failed"; }
    rm -f "$lock"
    echo "$want" > "$HUB_ENV/.cnnlab-lock"
  fi
  want=$(find autograder cnnlab jupyter/student jupyter/instructor pyproject.toml -type f \
           \( -name '*.py' -o -name '*.csv' -o -name '*.json' -o -name '*.toml' \) -not -path '*/__pycache__/*' \
         | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
  have=$(cat "$HUB_ENV/.cnnlab-course" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "Installing the course package into the hub's environment ..."
    local build; build=$(mktemp -d)
    cp -r autograder cnnlab pyproject.toml "$build"/
    if [ -f README.md ]; then cp README.md "$build"/; else echo "# cnnlab" > "$build/README.md"; fi
    "$HUB_ENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$build" \
      || { rm -rf "$build"; die "installing the course package failed"; }
    rm -rf "$build"
    rm -rf "$HUB_ENV/share/cnnlab/jupyter"
    mkdir -p "$HUB_ENV/share/cnnlab/jupyter"
    cp -r jupyter/student jupyter/instructor "$HUB_ENV/share/cnnlab/jupyter/"
    echo "$want" > "$HUB_ENV/.cnnlab-course"
  fi
  chmod -R go+rX,go-w "$HUB_ENV"
  # the proxy, from npm, into jupyter/hub/node_modules (package-lock.json pins it)
  if [ ! -x "$PROXY_DIR/node_modules/configurable-http-proxy/bin/configurable-http-proxy" ] || \
     [ "$PROXY_DIR/package-lock.json" -nt "$PROXY_DIR/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || die "npm is missing: install Node.js 20 or newer with npm (apt-get install nodejs npm)"
    echo "Installing configurable-http-proxy (npm ci) ..."
    npm ci --prefix "$PROXY_DIR" --no-audit --no-fund --loglevel=error >/dev/null
  fi
}

prepare() {
  need_root
  command -v runuser >/dev/null || die "runuser is missing (util-linux)"
  mkdir -p "$HUB_DIR"
  chmod 755 "$HUB_DIR"
  install -d -m 700 "$HUB_DIR/hub"
  setup_env
  "$HUB_ENV/bin/python" -m autograder.hub.accounts --hub-dir "$HUB_DIR" --prefix "$PREFIX" --instructor "$INSTRUCTOR" >/dev/null
  local igrp="$PREFIX-instructors"
  install -d -m 750 -o root -g "$igrp" "$HUB_DIR/logs"
  # nbgrader's exchange: the root writable by all (sticky: nobody removes another's entry); the
  # course's folders made now, by the instructor, with nbgrader's modes: inbound 733 (students
  # write, cannot list), outbound 755, feedback 711 (pages found only by their hash)
  install -d -m 1777 "$HUB_DIR/exchange"
  install -d -m 755 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/exchange/cnnlab"
  install -d -m 733 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/exchange/cnnlab/inbound"
  install -d -m 755 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/exchange/cnnlab/outbound"
  install -d -m 711 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/exchange/cnnlab/feedback"
  # the instructor's course: solutions and release copied once from this clone, then theirs
  if [ ! -d "$HUB_DIR/course" ]; then
    install -d -m 700 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/course"
    cp -r solutions notebooks "$HUB_DIR/course/"
    chown -R "$INSTRUCTOR:$igrp" "$HUB_DIR/course"
    echo "The instructor's course folder: $HUB_DIR/course (solutions/ and notebooks/ copied from $REPO)"
  fi
  chmod 700 "$HUB_DIR/course"
  install -d -m 700 -o "$INSTRUCTOR" -g "$igrp" "$HUB_DIR/autofeedback"
  if [ ! -f "$HUB_DIR/hub/id" ]; then
    echo "cnnlab-hub-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$HUB_DIR/hub/id"
  fi
  cat > "$HUB_DIR/hub/settings.env" <<SETTINGS
SAVED_HUB_ENV=$HUB_ENV
SAVED_PORT=$PORT
SAVED_INSTRUCTOR=$INSTRUCTOR
SAVED_PREFIX=$PREFIX
SETTINGS
}

hub_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -qzx "CNNLAB_HUB_ID=$(cat "$HUB_DIR/hub/id" 2>/dev/null)" "/proc/$pid/environ" 2>/dev/null; then
    echo "$pid"
  fi
}

marked() {   # PIDs of every process that carries this hub's id (hub, proxy, servers, kernels, service)
  local id; id=$(cat "$HUB_DIR/hub/id" 2>/dev/null) || return 0
  for e in /proc/[0-9]*/environ; do
    local pid=${e#/proc/}; pid=${pid%/environ}
    [ "$pid" = $$ ] && continue
    if grep -qzx "CNNLAB_HUB_ID=$id" "$e" 2>/dev/null; then echo "$pid"; fi
  done
}

start() {
  prepare
  if [ -n "$(hub_pid)" ]; then
    echo "The hub is already running: http://127.0.0.1:$PORT/ (pid $(hub_pid))"; return 0
  fi
  local left; left=$(marked | tr '\n' ' ')
  [ -z "$left" ] || die "processes of an earlier run of this hub are still there ($left): run scripts/hub.sh stop"
  local id; id=$(cat "$HUB_DIR/hub/id")
  echo "Starting the hub (log: $HUB_DIR/logs/hub.log) ..."
  ( cd "$HUB_DIR/hub" && exec setsid env -i PATH="$HUB_ENV/bin:/usr/local/bin:/usr/bin:/bin" HOME=/root \
      LANG=C.UTF-8 CNNLAB_HUB_ID="$id" CNNLAB_HUB_DIR="$HUB_DIR" CNNLAB_HUB_ENV="$HUB_ENV" \
      CNNLAB_HUB_PORT="$PORT" CNNLAB_HUB_INSTRUCTOR="$INSTRUCTOR" CNNLAB_HUB_GROUP_PREFIX="$PREFIX" \
      CNNLAB_HUB_PROXY="$PROXY_DIR/node_modules/configurable-http-proxy/bin/configurable-http-proxy" \
      ${CNNLAB_FEEDBACK_POLL:+CNNLAB_FEEDBACK_POLL=$CNNLAB_FEEDBACK_POLL} \
      "$HUB_ENV/bin/jupyterhub" -f "$REPO/jupyter/hub/jupyterhub_config.py" ) \
      >> "$HUB_DIR/logs/hub.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 180))
  until "$HUB_ENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/hub/health', timeout=5)" 2>/dev/null; do
    if [ $SECONDS -gt $deadline ] || ! kill -0 $! 2>/dev/null; then
      tail -n 30 "$HUB_DIR/logs/hub.log" >&2
      stop >/dev/null 2>&1 || true
      die "the hub did not start (the log's end is above)"
    fi
    sleep 1
  done
  echo "The hub is running: http://127.0.0.1:$PORT/  (instructor: $INSTRUCTOR; initial passwords: $HUB_DIR/accounts.csv)"
  echo "Everything it keeps is in $HUB_DIR; stop it with scripts/hub.sh stop"
}

stop() {
  [ -f "$HUB_DIR/hub/id" ] || { echo "no hub in $HUB_DIR"; return 0; }
  local pid; pid=$(hub_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  local left; left=$(marked)
  if [ -n "$left" ]; then                 # what the hub did not stop: by pid, this hub's only
    echo "stopping what the hub left running: $(echo $left)"
    kill -TERM $left 2>/dev/null || true
    sleep 2
    left=$(marked); [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
    sleep 0.5
  fi
  left=$(marked)
  [ -z "$left" ] || die "still running after stop: $(echo $left)"
  rm -f "$PIDFILE" "$HUB_DIR/hub/proxy.pid"
  echo "The hub is stopped (nothing of it is running)."
}

status() {
  local pid; pid=$(hub_pid)
  if [ -n "$pid" ]; then echo "running: http://127.0.0.1:$PORT/ (hub pid $pid)"; else echo "not running"; fi
  local left; left=$(marked | tr '\n' ' ')
  [ -z "$left" ] || { echo "processes of this hub: $left"; ps -o pid,user,args -p "${left// /,}" 2>/dev/null | cut -c1-160 || true; }
  [ -n "$pid" ]
}

add_users() {
  local roster="" args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --instructor) INSTRUCTOR=$2; shift 2 ;;
      --id-column) args+=(--id-column "$2"); shift 2 ;;
      -*) die "unknown option $1" ;;
      *) roster=$1; shift ;;
    esac
  done
  prepare
  [ -n "$roster" ] || return 0
  [ -f "$roster" ] || die "no roster file $roster"
  "$HUB_ENV/bin/python" -m autograder.hub.accounts "$roster" --hub-dir "$HUB_DIR" --prefix "$PREFIX" "${args[@]}"
  # the roster into the instructor's gradebook too (formgrader shows names), as the instructor
  local copy; copy=$(mktemp /tmp/cnnlab-roster.XXXXXX.csv)
  cp "$roster" "$copy"; chown "$INSTRUCTOR" "$copy"
  runuser -u "$INSTRUCTOR" -- env PATH="$HUB_ENV/bin:/usr/bin:/bin" CNNLAB_COURSE_DIR="$HUB_DIR/course" \
    CNNLAB_SOLUTIONS="$HUB_DIR/course/solutions" CNNLAB_NOTEBOOKS="$HUB_DIR/course/notebooks" \
    "$HUB_ENV/bin/python" -m autograder roster "$copy" "${args[@]}" || { rm -f "$copy"; die "the roster could not be imported into the gradebook"; }
  rm -f "$copy"
}

feedback() {   # the instructor's settings of the feedback service, as the instructor
  [ -f "$HUB_DIR/hub/id" ] || die "no hub in $HUB_DIR: run scripts/hub.sh start first"
  need_root
  runuser -u "$INSTRUCTOR" -- env PATH="$HUB_ENV/bin:/usr/bin:/bin" CNNLAB_COURSE_DIR="$HUB_DIR/course" \
    CNNLAB_SOLUTIONS="$HUB_DIR/course/solutions" CNNLAB_NOTEBOOKS="$HUB_DIR/course/notebooks" \
    "$HUB_ENV/bin/python" -m autograder.hub.settings "$@"
}

case "$cmd" in
  start) start ;;
  feedback) feedback "$@" ;;
  stop) stop ;;
  status) status ;;
  add-users) add_users "$@" ;;
  *) echo "usage: scripts/hub.sh start|stop|status|add-users ROSTER [--instructor NAME] [--id-column COL]|feedback [ASSIGNMENT --on|--off --max-attempts N]" >&2; exit 2 ;;
esac
