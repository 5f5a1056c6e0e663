"""JupyterHub configuration of the course hub (started by `scripts/hub.sh start`, which sets the
CNNLAB_HUB_* variables read here; see README, "The course on JupyterHub").

- Accounts: real Unix accounts, logged in with their Unix password (PAM). Members of
  <prefix>-students and <prefix>-instructors are admitted, instructors as hub admins.
- Servers: LocalProcessSpawner starts each person's JupyterLab as their own Unix user, from the
  hub's environment (the course package installed there, not the instructor's repository).
  A student's server opens on ~/cnnlab (their workspace, mode 700), with Validate and the
  Assignment List; the instructor's on the course folder of the hub (solutions/, notebooks/, the
  gradebook and the other grading folders), with formgrader and Create Assignment.
- The exchange: one shared folder, laid out with nbgrader's modes by scripts/hub.sh.
- The feedback service (autograder.hub.service): started and stopped with the hub, as the
  instructor's Unix user, with its own API token and a role with no scopes beyond its own.
- Everything the hub keeps is in $CNNLAB_HUB_DIR: hub/ (database, cookie secret), logs/,
  exchange/, course/, autofeedback/.
"""
import grp
import os
import pwd
import socket
from pathlib import Path

HUB = Path(os.environ["CNNLAB_HUB_DIR"])
ENV = Path(os.environ["CNNLAB_HUB_ENV"])
PORT = int(os.environ.get("CNNLAB_HUB_PORT", "18200"))
INSTRUCTOR = os.environ["CNNLAB_HUB_INSTRUCTOR"]
PREFIX = os.environ.get("CNNLAB_HUB_GROUP_PREFIX", "cnnlab")
MARK = os.environ["CNNLAB_HUB_ID"]              # every process of this hub carries it (hub.sh stop)
PROXY = os.environ["CNNLAB_HUB_PROXY"]
SHARE = ENV / "share" / "cnnlab" / "jupyter"      # copies of jupyter/student and jupyter/instructor
STUDENTS, INSTRUCTORS = f"{PREFIX}-students", f"{PREFIX}-instructors"
COURSE = HUB / "course"
EXCHANGE = HUB / "exchange"
SERVICE = "cnnlab-feedback"

c = get_config()  # noqa: F821

# ports: the hub's range is PORT .. PORT+99 (public, proxy API, hub, then single-user servers)
c.JupyterHub.bind_url = f"http://127.0.0.1:{PORT}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 1}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{PORT + 2}"
c.ConfigurableHTTPProxy.command = [PROXY]
c.ConfigurableHTTPProxy.pid_file = str(HUB / "hub" / "proxy.pid")
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.cleanup_servers = True              # stopping the hub stops every server and the proxy
c.JupyterHub.cleanup_proxy = True

# state: one folder
c.JupyterHub.db_url = f"sqlite:///{HUB / 'hub' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(HUB / "hub" / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(HUB / "hub" / "jupyterhub.pid")
c.JupyterHub.log_datefmt = "%Y-%m-%d %H:%M:%S"

# accounts: Unix users, Unix passwords
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False         # no login session records for a web login
c.PAMAuthenticator.allowed_groups = {STUDENTS, INSTRUCTORS}
c.PAMAuthenticator.admin_groups = {INSTRUCTORS}
c.Authenticator.delete_invalid_users = False

# servers
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.args = ["--ServerApp.terminals_enabled=True", "--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
c.Spawner.env_keep = ["LANG", "LC_ALL"]


def _free_port() -> int:
    for port in range(PORT + 10, PORT + 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT + 10}-{PORT + 99} for another server")


def _is_instructor(name: str) -> bool:
    try:
        return name in grp.getgrnam(INSTRUCTORS).gr_mem or pwd.getpwnam(name).pw_gid == grp.getgrnam(INSTRUCTORS).gr_gid
    except KeyError:
        return False


def _prepare(spawner) -> None:
    name = spawner.user.name
    user = pwd.getpwnam(name)
    env = {
        "PATH": f"{ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "CNNLAB_HUB_ID": MARK,
        "CNNLAB_EXCHANGE": str(EXCHANGE),
    }
    if _is_instructor(name):
        root = COURSE
        env.update(JUPYTER_CONFIG_PATH=str(SHARE / "instructor"), CNNLAB_COURSE_DIR=str(COURSE),
                   CNNLAB_SOLUTIONS=str(COURSE / "solutions"), CNNLAB_NOTEBOOKS=str(COURSE / "notebooks"))
    else:
        root = Path(user.pw_dir) / "cnnlab"
        if not root.is_dir() or root.is_symlink():
            if root.is_symlink():
                raise RuntimeError(f"{root} is a link; remove it (the workspace must be a folder)")
            root.mkdir(mode=0o700)
            os.chown(root, user.pw_uid, user.pw_gid)
        env.update(JUPYTER_CONFIG_PATH=str(SHARE / "student"), CNNLAB_STUDENT_DIR=str(root))
    spawner.notebook_dir = str(root)
    spawner.environment = env
    spawner.port = _free_port()


c.Spawner.pre_spawn_hook = _prepare

# the feedback service: grades each submission as it arrives (autograder/hub/service.py)
c.JupyterHub.services = [{
    "name": SERVICE,
    "command": [str(ENV / "bin" / "python"), "-m", "autograder.hub.service"],
    "user": INSTRUCTOR,
    "cwd": str(HUB / "autofeedback"),
    "environment": {
        "PATH": f"{ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": pwd.getpwnam(INSTRUCTOR).pw_dir,
        "CNNLAB_HUB_ID": MARK,
        "CNNLAB_EXCHANGE": str(EXCHANGE),
        "CNNLAB_COURSE_DIR": str(COURSE),
        "CNNLAB_SOLUTIONS": str(COURSE / "solutions"),
        "CNNLAB_NOTEBOOKS": str(COURSE / "notebooks"),
        "CNNLAB_FEEDBACK_WORKDIR": str(HUB / "autofeedback"),
        "CNNLAB_FEEDBACK_POLL": os.environ.get("CNNLAB_FEEDBACK_POLL", "1"),
    },
}]
# its token may do nothing on the hub's API (it reads the exchange, not the hub): no scopes
c.JupyterHub.load_roles = [{"name": "cnnlab-feedback-service", "description": "the feedback service",
                            "scopes": [], "services": [SERVICE]}]
