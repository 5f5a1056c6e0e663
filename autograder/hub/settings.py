"""Which assignments get feedback on submit, and how many graded attempts each student has.

The instructor's choice, kept in the instructor's course folder as ``autofeedback.json``
(``$CNNLAB_FEEDBACK_SETTINGS`` names another file); the feedback service reads it before every
poll, so a change takes effect within seconds, without restarting anything. Off by default:

    python -m autograder.hub.settings                              # show
    python -m autograder.hub.settings 05_pooling --on --max-attempts 5
    python -m autograder.hub.settings 05_pooling --off
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import config
from .queue import Setting

FILE = "autofeedback.json"


def settings_path() -> Path:
    return Path(os.environ.get("CNNLAB_FEEDBACK_SETTINGS") or config.DEFAULT_WORKDIR / FILE)


def load(path: Path | None = None) -> dict[str, Setting]:
    """The settings per assignment (empty when the file does not exist); ValueError when unreadable."""
    path = Path(path or settings_path())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the feedback settings {path}: {exc}; fix or remove the file") from exc
    out = {}
    for name, item in (data.get("assignments") or {}).items():
        out[name] = Setting(bool(item.get("enabled")), max(0, int(item.get("max_attempts") or 0)))
    return out


def save(settings: dict[str, Setting], path: Path | None = None) -> Path:
    """Write the settings atomically (the service may read at any moment)."""
    path = Path(path or settings_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"assignments": {k: {"enabled": v.enabled, "max_attempts": v.max_attempts}
                            for k, v in sorted(settings.items())}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def describe(settings: dict[str, Setting]) -> str:
    if not any(s.enabled for s in settings.values()):
        return "feedback on submit: off for every assignment"
    lines = ["feedback on submit:"]
    for name, s in sorted(settings.items()):
        cap = f"at most {s.max_attempts} graded attempt(s) per student" if s.max_attempts else "no cap on attempts"
        lines.append(f"  {name}: {'on, ' + cap if s.enabled else 'off'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.hub.settings",
                                description="Turn feedback on submit on or off per assignment, and cap attempts.")
    p.add_argument("assignment", nargs="?")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--on", action="store_true")
    g.add_argument("--off", action="store_true")
    p.add_argument("--max-attempts", type=int, default=None, help="graded attempts per student (0: no cap)")
    p.add_argument("--file", type=Path, default=None, help=f"settings file (default {settings_path()})")
    args = p.parse_args(argv)
    try:
        current = load(args.file)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.assignment:
        known = config.Course().assignments()
        if known and args.assignment not in known:
            print(f"unknown assignment {args.assignment!r}; the course has {', '.join(known)}", file=sys.stderr)
            return 2
        if args.max_attempts is not None and args.max_attempts < 0:
            print("--max-attempts must be 0 (no cap) or more", file=sys.stderr)
            return 2
        s = current.get(args.assignment, Setting())
        if args.on or args.off:
            s.enabled = bool(args.on)
        if args.max_attempts is not None:
            s.max_attempts = args.max_attempts
        current[args.assignment] = s
        save(current, args.file)
    print(describe(current))
    return 0


if __name__ == "__main__":
    sys.exit(main())
