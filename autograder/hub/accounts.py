"""Unix accounts for the course hub: one per roster student, one for the instructor.

JupyterHub logs each person in with their Unix password (PAM) and starts their server as their
Unix user, so what a student can read is what Unix permissions allow: their home (mode 700) and
the exchange as nbgrader lays it out. Run as root by ``scripts/hub.sh add-users``:

- the account is made with ``useradd`` (home ``/home/<id>``, mode 700), put in the course's group
  (students ``<prefix>-students``, the instructor ``<prefix>-instructors``: the hub admits members
  of these groups only), and given a random initial password;
- an account that exists keeps its password, and is only added to the group;
- the initial passwords go to ``<hub folder>/accounts.csv`` (root only, mode 600) for the
  instructor to hand out; students change theirs with ``passwd`` in a terminal.

Ids must be valid Unix names (lower-case letters, digits, ``_`` and ``-``, starting with a letter
or ``_``, at most 32 characters): nbgrader files a submission under its author's Unix name.
"""

from __future__ import annotations

import argparse
import csv
import grp
import os
import pwd
import re
import secrets
import subprocess
import sys
from pathlib import Path

from ..roster import read_roster

NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
RESERVED = {"root", "daemon", "bin", "sys", "nobody", "admin", "instructor-admin"}


def group_names(prefix: str) -> tuple[str, str]:
    """(students' group, instructors' group) of the course whose group prefix is ``prefix``."""
    return f"{prefix}-students", f"{prefix}-instructors"


def check_name(name: str) -> None:
    """Raise ValueError, naming the fix, when ``name`` cannot be a Unix account of the course."""
    if not NAME.match(name):
        raise ValueError(f"roster id {name!r} is not a valid Unix user name (lower-case letters, digits, "
                         "'_' and '-', starting with a letter, at most 32 characters): pick the roster's "
                         "login column with --id-column, or edit the roster")
    if name in RESERVED:
        raise ValueError(f"roster id {name!r} is a reserved account name; rename it in the roster")


def _run(cmd: list[str], **kw) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {(out.stderr or out.stdout).strip()}")


def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        _run(["groupadd", name])


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_user(name: str, group: str, comment: str = "") -> str | None:
    """Make ``name`` (home mode 700) in ``group``; return its new password, None if it existed."""
    check_name(name)
    ensure_group(group)
    if exists(name):
        _run(["usermod", "-a", "-G", group, name])
        return None
    _run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", group,
          "--comment", comment.replace(":", " ")[:60], name])
    home = Path(pwd.getpwnam(name).pw_dir)
    os.chmod(home, 0o700)
    password = secrets.token_urlsafe(12)
    _run(["chpasswd"], input=f"{name}:{password}\n")
    return password


def remove_user(name: str) -> None:
    """Remove the account and its home (used by the tests for the accounts they made)."""
    if exists(name):
        uid = pwd.getpwnam(name).pw_uid
        for pid in processes_of(uid):       # each of this account's processes, by its id
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        _run(["userdel", "--remove", name])


def processes_of(uid: int) -> list[int]:
    """PIDs of the processes whose real uid is ``uid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid == uid:
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def remove_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        return
    _run(["groupdel", name])


def record(passwords: Path, rows: list[tuple[str, str, str]]) -> None:
    """Append (id, role, password) rows to the root-only credentials file."""
    new = not passwords.exists()
    fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["id", "role", "initial_password"])
        w.writerows(rows)


def add_users(roster: Path | None, hub_dir: Path, prefix: str, instructor: str | None = None,
              id_column: str | None = None, echo=print) -> list[tuple[str, str, str]]:
    """Make the accounts of ``roster``'s students (and of ``instructor``); return the new ones."""
    if os.geteuid() != 0:
        raise PermissionError("adding Unix accounts needs root: run `sudo scripts/hub.sh add-users ...`")
    students_group, instructors_group = group_names(prefix)
    people: list[tuple[str, str, str]] = []            # (id, role, comment)
    if instructor:
        check_name(instructor)
        people.append((instructor, "instructor", "cnnlab instructor"))
    if roster is not None:
        entries = read_roster(roster, id_column)
        bad = []
        for s in entries:
            try:
                check_name(s.id)
            except ValueError as exc:
                bad.append(str(exc))
        if bad:
            raise ValueError("\n".join(bad))
        people += [(s.id, "student", " ".join(x for x in (s.first_name, s.last_name) if x)) for s in entries]
    made = []
    for name, role, comment in people:
        pw = ensure_user(name, instructors_group if role == "instructor" else students_group, comment)
        if pw is None:
            echo(f"{name}: exists, in group {instructors_group if role == 'instructor' else students_group}")
        else:
            made.append((name, role, pw))
            echo(f"{name}: account made ({role})")
    if made:
        record(Path(hub_dir) / "accounts.csv", made)
        echo(f"initial passwords of the {len(made)} new account(s): {Path(hub_dir) / 'accounts.csv'} (root only)")
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.hub.accounts",
                                description="Make Unix accounts for the course hub from a roster (as root).")
    p.add_argument("roster", nargs="?", type=Path, help="roster CSV (an LMS export or id,first_name,last_name,email)")
    p.add_argument("--hub-dir", type=Path, required=True)
    p.add_argument("--prefix", default="cnnlab", help="group prefix: <prefix>-students, <prefix>-instructors")
    p.add_argument("--instructor", default=None, help="also make this instructor account")
    p.add_argument("--id-column", default=None, help="the roster column holding the Unix user names")
    args = p.parse_args(argv)
    if args.roster is None and not args.instructor:
        p.error("give a roster, --instructor NAME, or both")
    try:
        add_users(args.roster, args.hub_dir, args.prefix, args.instructor, args.id_column)
    except (ValueError, RuntimeError, PermissionError, OSError) as exc:
        print(f"add-users failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
