"""Feedback seconds after submit: a JupyterHub service that grades each new submission.

Started by JupyterHub with the hub (``jupyter/hub/jupyterhub_config.py``, ``services``), as the
instructor's Unix user, the owner of nbgrader's inbound folder. Every ``poll`` seconds it:

1. lists nbgrader's inbound folder (``<exchange>/<course>/inbound``) for submissions of the
   assignments the instructor turned on (:mod:`autograder.hub.settings`) that it has not decided
   about, and takes the complete ones (``submission_secret.txt``, which nbgrader's submit writes
   after the notebooks, is there);
2. lets the fair queue (:mod:`autograder.hub.queue`) choose at most one per student, latest only,
   round-robin, within the attempt cap;
3. copies each chosen submission into the service's **own** work folder (never the instructor's:
   the final grades are the instructor's, from their own collect and autograde after the deadline),
   taking only regular files that the submitting student owns (a link to the instructor's files,
   or a folder that another account made under the student's name, is refused);
4. grades them with the course's one pipeline (:func:`autograder.engine.autograde`: sandboxed,
   limited, the trusted verifier), writes the feedback pages (:func:`autograder.feedback.
   generate_feedback`: hidden tests removed) and releases them into the exchange with nbgrader's
   own release_feedback, under the hash of the submission's secret: only the student who submitted
   it can find the page. The student's Assignment List then offers "Fetch Feedback".

Polling, not inotify: the exchange of a class that outgrows one machine is a shared network
volume, where inotify sees no other machine's writes; one directory listing per second costs
nothing next to grading (seconds), and a poll of 1 s adds at most 1 s to the wait.

The service writes in its work folder ``state.json`` (what it decided about each submission,
graded attempts per student) and ``latency.csv`` (submit-to-feedback seconds, with the load).
``python -m autograder.hub.service --once`` polls once (for a terminal, and the tests).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import html
import json
import os
import pwd
import shutil
import stat
import sys
import time
from pathlib import Path

from .. import config
from ..config import Course
from . import settings as settings_mod
from .queue import CAPPED, FAILED, GRADED, REJECTED, FairQueue, Submission, parse_name

SECRET = "submission_secret.txt"
STAMP = "timestamp.txt"
MAX_FILE = 20 * 1024 * 1024          # a submitted file larger than this is refused


class Refused(Exception):
    """A submission the service will not grade (the reason is logged and kept in state.json)."""


def default_uid_of(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def scan(exchange: Path, course_id: str = config.COURSE_ID) -> list[Submission]:
    """The complete submissions in the inbound folder (any assignment), oldest first."""
    inbound = Path(exchange) / course_id / "inbound"
    out = []
    try:
        entries = list(os.scandir(inbound))
    except OSError:
        return out
    for e in entries:
        sub = parse_name(e.name, Path(e.path))
        if sub is None or not e.is_dir(follow_symlinks=False):
            continue
        try:
            secret = (sub.path / SECRET).read_text()
        except OSError:
            continue                     # not written yet (submit still copying), or unreadable
        if len(secret.strip()) >= 32:
            out.append(sub)
    return sorted(out, key=lambda s: (s.timestamp, s.name))


def safe_copy(sub: Submission, dest: Path, uid: int | None) -> None:
    """Copy ``sub``'s top-level regular files to ``dest``; refuse what its student does not own."""
    st = os.lstat(sub.path)
    if uid is None:
        raise Refused(f"{sub.name}: no Unix account {sub.student!r}")
    if st.st_uid != uid:
        raise Refused(f"{sub.name}: the folder belongs to uid {st.st_uid}, not to {sub.student} ({uid})")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for e in os.scandir(sub.path):
        if e.is_dir(follow_symlinks=False):
            continue                                       # nbgrader submits a flat folder
        try:
            fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:   # O_NOFOLLOW on a link, or unreadable
            raise Refused(f"{sub.name}: {e.name} cannot be read safely ({exc.strerror})") from exc
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or fst.st_uid != uid or fst.st_nlink != 1:
                raise Refused(f"{sub.name}: {e.name} is not a plain file of {sub.student}")
            if fst.st_size > MAX_FILE:
                raise Refused(f"{sub.name}: {e.name} is larger than {MAX_FILE // 2**20} MiB")
            with os.fdopen(os.dup(fd), "rb") as src, open(dest / e.name, "wb") as out:
                shutil.copyfileobj(src, out)
        finally:
            os.close(fd)


def notice_page(title: str, text: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>{t}</title></head>"
            "<body style='font-family: sans-serif; max-width: 48em; margin: 2em auto'>"
            "<h1>{t}</h1><p>{x}</p></body></html>").format(t=html.escape(title), x=html.escape(text))


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


class Service:
    """The feedback service's state and one poll (:meth:`poll`)."""

    def __init__(self, course: Course, exchange: Path, settings_file: Path | None = None,
                 batch: int = 5, uid_of=default_uid_of, echo=print, unsafe_no_sandbox: bool = False,
                 settle: float = 1.0):
        self.course, self.exchange = course, Path(exchange)
        self.settle = settle
        self.settings_file = settings_file
        self.batch, self.uid_of, self.echo = batch, uid_of, echo
        self.unsafe_no_sandbox = unsafe_no_sandbox
        self.state_file = course.workdir / "state.json"
        course.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(course.workdir, 0o700)
        self.queue = FairQueue()
        if self.state_file.is_file():
            self.queue = FairQueue.from_json(json.loads(self.state_file.read_text()))

    # -- bookkeeping
    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.queue.to_json(), indent=1))
        os.replace(tmp, self.state_file)

    def _latency(self, sub: Submission, batch: int, stages: dict[str, float]) -> float:
        now = dt.datetime.now(dt.timezone.utc)
        secs = (now - sub.timestamp).total_seconds()
        path = self.course.workdir / "latency.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["student", "assignment", "submitted", "feedback_released", "seconds", "batch", "load1",
                            "graded_at_s", "pages_at_s", "released_at_s"])
            w.writerow([sub.student, sub.assignment, sub.timestamp.isoformat(), now.isoformat(),
                        f"{secs:.2f}", batch, f"{load_average():.2f}",
                        *(f"{stages.get(k, 0.0):.2f}" for k in ("autograde", "feedback", "release"))])
        return secs

    # -- the exchange
    def _release(self, sub: Submission, pages: dict[str, str] | None = None, source: Path | None = None) -> None:
        """Release the feedback folder of ``sub`` (or ``pages``: notebook id -> HTML) with nbgrader;
        the submission's secret and time come from its copy (``source``, default submitted/)."""
        from nbgrader.apps import NbGraderAPI

        from ..util import quiet

        folder = self.course.feedback / sub.student / sub.assignment
        if pages is not None:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            for nb_id, page in pages.items():
                (folder / f"{nb_id}.html").write_text(page, encoding="utf-8")
        source = source or self.course.submitted / sub.student / sub.assignment
        for name in (SECRET, STAMP):
            shutil.copyfile(source / name, folder / name)
        cfg = self.course.config()
        cfg.Exchange.root = str(self.exchange)
        with quiet():
            out = NbGraderAPI(config=cfg).release_feedback(sub.assignment, sub.student)
        if not out.get("success"):
            raise RuntimeError(f"release_feedback {sub.student}/{sub.assignment}: "
                               f"{(out.get('error') or out.get('log') or '')[-500:]}")

    def _notebook_ids(self, sub: Submission) -> list[str]:
        return sorted(p.stem for p in (self.course.notebooks / sub.assignment).glob("*.ipynb"))

    # -- one poll
    def poll(self) -> dict[str, list[str]]:
        """Decide about and grade what is waiting; return what happened (names per outcome)."""
        from .. import engine
        from ..feedback import generate_feedback

        done: dict[str, list[str]] = {}
        try:
            settings = settings_mod.load(self.settings_file)
        except ValueError as exc:
            self.echo(f"feedback service: {exc}")
            return done
        found = scan(self.exchange)
        fresh = [s for s in found if s.name not in self.queue.handled and settings.get(s.assignment)
                 and settings[s.assignment].enabled]
        if fresh and self.settle > 0:
            # a class submits in bursts: wait until the newest is `settle` s old, so that one batch
            # takes the burst (rather than the first alone, the rest after it)
            age = (dt.datetime.now(dt.timezone.utc) - max(s.timestamp for s in fresh)).total_seconds()
            if 0 <= age < self.settle:
                time.sleep(self.settle - age)
                found = scan(self.exchange)
        decision = self.queue.pick(found, settings, self.batch)
        for sub in decision.superseded:
            done.setdefault("superseded", []).append(sub.name)
        for sub in decision.capped:
            cap = settings[sub.assignment].max_attempts
            done.setdefault(CAPPED, []).append(sub.name)
            try:
                # not into submitted/: a capped submission is never graded here
                notice = self.course.workdir / "capped" / sub.student / sub.assignment
                safe_copy(sub, notice, self.uid_of(sub.student))
                text = (f"You have had feedback on {cap} submission(s) of {sub.assignment}, the most this "
                        "assignment allows. This submission was received; your instructor grades it "
                        "after the deadline as usual.")
                self._release(sub, {nb: notice_page(f"{sub.assignment}: attempt limit reached", text)
                                    for nb in self._notebook_ids(sub)}, source=notice)
            except (Refused, OSError, RuntimeError) as exc:
                self.echo(f"feedback service: {exc}")
        todo: list[Submission] = []
        for sub in decision.grade:
            try:
                safe_copy(sub, self.course.submitted / sub.student / sub.assignment, self.uid_of(sub.student))
                todo.append(sub)
            except (Refused, OSError) as exc:
                self.echo(f"feedback service: refused {exc}")
                self.queue.done(sub, REJECTED)
                done.setdefault(REJECTED, []).append(sub.name)
        if todo:
            self._grade(todo, done)
        if decision.superseded or decision.capped or decision.grade:
            self._save()
        return done

    def _grade(self, todo: list[Submission], done: dict[str, list[str]]) -> None:
        """Grade ``todo`` in one autograde run; each submission's feedback is written and released
        as soon as its own grading is recorded, while the others are still being graded."""
        from .. import engine
        from ..feedback import generate_feedback

        by_key = {sub.key: sub for sub in todo}
        finished: dict[tuple[str, str], str] = {}
        t0 = time.monotonic()

        def release(sub: Submission, outcome: str, stages: dict[str, float]) -> None:
            try:
                if outcome == GRADED:
                    self._release(sub)
                else:
                    text = ("Your submission was received, but it could not be graded automatically "
                            "just now. Nothing is lost: your instructor grades it after the deadline.")
                    self._release(sub, {nb: notice_page(f"{sub.assignment}: no automatic feedback", text)
                                        for nb in self._notebook_ids(sub)})
            except (OSError, RuntimeError) as exc:
                self.echo(f"feedback service: {exc}")
                outcome = FAILED
            stages["release"] = time.monotonic() - t0
            finished[sub.key] = outcome
            self.queue.done(sub, outcome)
            secs = self._latency(sub, len(todo), stages)
            self.echo(f"feedback service: {sub.student}/{sub.assignment} {outcome}, {secs:.1f} s after submit "
                      f"(graded {stages['autograde']:.1f} s, pages {stages['feedback']:.1f} s, "
                      f"released {stages['release']:.1f} s into the batch of {len(todo)}; "
                      f"load {load_average():.1f})")
            done.setdefault(outcome, []).append(sub.name)

        def graded_one(res) -> None:
            sub = by_key.get((res.student, res.assignment))
            if sub is None or sub.key in finished:
                return
            stages = {"autograde": time.monotonic() - t0}
            outcome = GRADED if res.status == engine.STATUS_OK else FAILED
            if outcome == GRADED:
                try:
                    generate_feedback(self.course, assignments=[sub.assignment], students=[sub.student])
                except Exception as exc:  # noqa: BLE001 - a notice instead; the instructor grades later
                    self.echo(f"feedback service: feedback failed for {sub.name}: {exc}")
                    outcome = FAILED
            stages["feedback"] = time.monotonic() - t0
            release(sub, outcome, stages)

        keys = set(by_key)
        try:
            engine.autograde(self.course, students=sorted({s for s, _ in keys}),
                             assignments=sorted({a for _, a in keys}), progress=False, echo=self.echo,
                             unsafe_no_sandbox=self.unsafe_no_sandbox, on_result=graded_one)
        except Exception as exc:  # noqa: BLE001 - the service must go on; the instructor grades later
            self.echo(f"feedback service: grading failed: {exc}")
        for sub in todo:      # not graded at all (the run failed, or the submission was not found)
            if sub.key not in finished:
                now = time.monotonic() - t0
                release(sub, FAILED, {"autograde": now, "feedback": now})

    def run(self, interval: float = 1.0, stop=lambda: False) -> None:
        while not stop():
            did = self.poll()
            if not did:
                time.sleep(interval)


def course_from_env() -> tuple[Course, Path]:
    """The service's course (the instructor's solutions and release, its own work folder) and the
    exchange, from the environment the hub gives it."""
    work = os.environ.get("CNNLAB_FEEDBACK_WORKDIR")
    exchange = os.environ.get("CNNLAB_EXCHANGE")
    if not work or not exchange:
        raise SystemExit("the feedback service needs CNNLAB_FEEDBACK_WORKDIR and CNNLAB_EXCHANGE "
                         "(jupyter/hub/jupyterhub_config.py sets them)")
    if Path(work).resolve() == config.DEFAULT_WORKDIR.resolve():
        raise SystemExit("CNNLAB_FEEDBACK_WORKDIR must not be the instructor's work folder: the final "
                         "grades are the instructor's own")
    return Course(workdir=Path(work)), Path(exchange)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.hub.service", description=__doc__.split("\n\n")[0])
    p.add_argument("--once", action="store_true", help="poll once and exit")
    p.add_argument("--interval", type=float, default=float(os.environ.get("CNNLAB_FEEDBACK_POLL", "1")))
    p.add_argument("--batch", type=int, default=int(os.environ.get("CNNLAB_FEEDBACK_BATCH", "5")))
    args = p.parse_args(argv)
    course, exchange = course_from_env()
    svc = Service(course, exchange, batch=args.batch,
                  echo=lambda msg: print(msg, flush=True))
    if args.once:
        print(json.dumps(svc.poll()))
        return 0
    print(f"feedback service: watching {exchange} (every {args.interval:g} s), grading in {course.workdir}",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        svc.run(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
