"""One pipeline (issue 20): formgrader's Generate, Autograde and Generate Feedback run exactly the
chains the CLI runs: the whole lists of preprocessor classes, each with all its configured traits,
and the exporter with its traits.

The formgrader side is loaded as JupyterLab loads it (nbgrader's FormgradeExtension initialised
from ``jupyter/instructor`` on ``$JUPYTER_CONFIG_PATH``, in a process of its own); chains are
described by ``tests/fixtures/chainrec/chainrec.py``. Only the traits a grading run prepares for
itself (``autograder.config.PER_RUN_TRAITS``: files made from the sources once per run) may
differ, and only from unset (formgrader) to set (the CLI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder.config import PER_RUN_TRAITS

REPO = Path(__file__).resolve().parent.parent
CHAINREC = Path(__file__).parent / "fixtures" / "chainrec"
TOY = REPO / "tests" / "fixtures" / "toy" / "solutions"
A = "00_toy"

FORMGRADER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import chainrec
    from nbgrader.auth import Authenticator
    from nbgrader.apps import NbGraderAPI
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    fg = FormgradeExtension()          # what `jupyter lab` loads, configured from the config files
    fg.initialize([])
    api = NbGraderAPI(fg.coursedir, Authenticator(parent=fg), parent=fg)
    print(json.dumps(chainrec.static_chains(api)))
""")

CLI = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import chainrec
    from nbgrader.apps import NbGraderAPI
    from autograder import config, engine
    from autograder.config import Course

    course = Course(workdir=Path(sys.argv[2]), solutions=config.SOLUTIONS, notebooks=config.NOTEBOOKS)
    out = []
    # release (autograder.release.generate), autograde (engine.grading_config in a worker's private
    # folder, with a run's template), feedback (autograder.feedback.generate_feedback)
    release = config.course_config(course.workdir, course.db_url, solutions=course.solutions,
                                   notebooks=course.notebooks, release_directory=None)
    run = Path(sys.argv[3])
    tpl = engine.Template(run, run / "t.db", run / "release", run / "locked.json", "", run / "files", run / "skip.json")
    grading = engine.grading_config(course, tpl, run / "priv", engine.default_protect(course), "00_toy")
    for name, cfg in (("generate", release), ("autograde", grading), ("feedback", course.config())):
        chains = chainrec.static_chains(NbGraderAPI(config=cfg))
        out += [chains[0]] if name == "generate" else chains[1:3] if name == "autograde" else [chains[3]]
    print(json.dumps(out))
""")


def _env(workdir: Path, repo: Path = REPO, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_CONFIG_PATH", "CNNLAB_COURSE_DIR", "CNNLAB_DB")}
    env.update(PYTHONPATH=str(repo), CNNLAB_COURSE_DIR=str(workdir),
               JUPYTER_CONFIG_PATH=str(repo / "jupyter" / "instructor"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    env.update(extra)
    return env


def _json_run(code: str, *args, env: dict, cwd: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def split_per_run(entry: dict) -> tuple[dict, dict]:
    """(the entry without the per-run traits, {class: {trait: value}} of those traits)."""
    entry = json.loads(json.dumps(entry))
    per_run = {}
    for pp in entry["chain"]:
        name = pp["class"].rsplit(".", 1)[-1]
        for t in PER_RUN_TRAITS.get(name, ()):
            per_run.setdefault(name, {})[t] = pp["traits"].pop(t)
    return entry, per_run


def differences(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two chain entries (empty when the same)."""
    out = []
    ca, cb = [p["class"] for p in a["chain"]], [p["class"] for p in b["chain"]]
    if ca != cb:
        return [f"{a['converter']}: classes differ:\n  {ca}\n  {cb}"]
    for pa, pb in zip(a["chain"], b["chain"]):
        for t in sorted(set(pa["traits"]) | set(pb["traits"])):
            if pa["traits"].get(t) != pb["traits"].get(t):
                out.append(f"{a['converter']}: {pa['class']}.{t}: {pa['traits'].get(t)!r} != {pb['traits'].get(t)!r}")
    if a["exporter"] != b["exporter"]:
        ea, eb = a["exporter"], b["exporter"]
        keys = sorted(set(ea["traits"]) | set(eb["traits"]))
        out += [f"{a['converter']}: exporter {ea['class']} / {eb['class']}: {k}: {ea['traits'].get(k)!r} != "
                f"{eb['traits'].get(k)!r}" for k in keys if ea["traits"].get(k) != eb["traits"].get(k)] \
            or [f"{a['converter']}: exporter {ea['class']} != {eb['class']}"]
    return out


@pytest.fixture(scope="module")
def configured(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    """(formgrader's chains, the CLI's chains) for one work folder."""
    tmp = tmp_path_factory.mktemp("chains")
    work = tmp / "course"
    ui = _json_run(FORMGRADER, CHAINREC, env=_env(work), cwd=tmp)
    namespace = {"__name__": "cli_chains"}
    out = []
    old_argv, sys.argv = sys.argv, ["cli", str(CHAINREC), str(work), str(tmp / "run")]
    try:     # the CLI's side in this process (the configuration is the same in any process)
        exec(CLI.replace("print(json.dumps(out))", "RESULT = json.loads(json.dumps(out))"), namespace)
    finally:
        sys.argv = old_argv
    return ui, namespace["RESULT"]


def test_formgrader_is_configured_with_exactly_the_clis_chains(configured):
    ui, cli = configured
    assert [e["converter"] for e in ui] == [e["converter"] for e in cli] == [
        "GenerateAssignment", "Autograde.sanitize", "Autograde.autograde", "GenerateFeedback"]
    problems = []
    for u, c in zip(ui, cli):
        (u, u_run), (c, c_run) = split_per_run(u), split_per_run(c)
        problems += differences(u, c)
        for cls, traits in c_run.items():   # per-run inputs: unset in formgrader, set by the CLI's run
            folder = u_run[cls].pop("work_folder")      # the folder a notebook's run holds: formgrader's
            assert folder.endswith("/course") and traits.pop("work_folder") != folder   # is the work folder
            assert all(v in ("", None) for v in u_run[cls].values()), u_run
            assert traits["locked_file"] and traits["skip_file"], traits
    assert not problems, "\n".join(problems)
    feedback = [p["class"].rsplit(".", 1)[-1] for p in ui[3]["chain"]]   # (after the HTML exporter's own)
    i = feedback.index("FeedbackClearHiddenTests")
    assert feedback[i:i + 3] == ["FeedbackClearHiddenTests", "ScrubFeedback", "SanitizeFeedback"], feedback
    assert ui[3]["exporter"]["class"] == "autograder.sanitise.FeedbackExporter"     # the inert page


def test_the_comparison_sees_a_difference(configured):
    """The wrong case: a chain built elsewhere (the old feedback.py added SanitizeFeedback itself and
    set per-assignment hidden lines) is caught, class and trait."""
    fb = configured[0][3]
    other = json.loads(json.dumps(fb))
    other["chain"] = [p for p in other["chain"] if not p["class"].endswith("SanitizeFeedback")]
    assert any("classes differ" in d for d in differences(fb, other))
    other = json.loads(json.dumps(fb))
    next(p for p in other["chain"] if p["class"].endswith("ScrubFeedback"))["traits"]["hidden_lines"] = \
        ["check(x, tier='hidden')"]
    assert differences(fb, other) == [f"GenerateFeedback: autograder.preprocessors.ScrubFeedback.hidden_lines: "
                                      f"[] != [\"check(x, tier='hidden')\"]"]


# ----------------------------------------------------------------------------- what really runs

def _course_copy(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("autograder", "cnnlab", "jupyter"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(TOY / A, root / "solutions" / A)
    (root / "notebooks").mkdir()
    return root


FORMGRADER_BUTTONS = textwrap.dedent("""
    import json, os, sys
    from nbgrader.auth import Authenticator
    from nbgrader.apps import NbGraderAPI
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    fg = FormgradeExtension()
    fg.initialize([])
    api = NbGraderAPI(fg.coursedir, Authenticator(parent=fg), parent=fg)
    step = sys.argv[1]
    if step == "generate":
        out = api.generate_assignment("00_toy")
    elif step == "autograde":
        out = api.autograde("00_toy", "alice")
    else:
        out = api.generate_feedback("00_toy", "alice")
    print(json.dumps({"success": out["success"], "error": out.get("error", ""), "log": out.get("log", "")[-3000:]}))
""")

SCRIPT_CELL = ("from IPython.display import HTML, display\n"
               "display(HTML(\"<script>alert('live')</script><b onmouseover='alert(1)'>bold</b>\"))")


@pytest.mark.slow
@pytest.mark.sandbox
def test_formgrader_buttons_run_the_clis_chains_and_no_script_lives_in_its_feedback(tmp_path):
    root = _course_copy(tmp_path / "course")
    work = root / "course"
    log_ui, log_cli = tmp_path / "ui.jsonl", tmp_path / "cli.jsonl"
    env = _env(work, root, PYTHONPATH=f"{CHAINREC}{os.pathsep}{root}")

    def formgrader(step):
        out = subprocess.run([sys.executable, "-c", FORMGRADER_BUTTONS, step], capture_output=True, text=True,
                             env=dict(env, CNNLAB_CHAIN_LOG=str(log_ui)), cwd=root, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["success"], got["error"][-3000:] + got["log"]

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "autograder", *map(str, args), "--workdir", work],
                             capture_output=True, text=True, env=dict(env, CNNLAB_CHAIN_LOG=str(log_cli)), cwd=root,
                             timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    formgrader("generate")
    sub = work / "submitted" / "alice" / A
    sub.mkdir(parents=True)
    nb = nbformat.read(root / "notebooks" / A / f"{A}.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(SCRIPT_CELL))
    nbformat.write(nb, sub / f"{A}.ipynb")
    formgrader("autograde")
    formgrader("feedback")
    page = (work / "feedback" / "alice" / A / f"{A}.html").read_text()
    import re

    assert "<b>bold</b>" in page or "bold" in page                   # the output is shown ...
    live = re.findall(r"<script>alert|<[a-z]+[^>]*\son[a-z]+\s*=", page)   # ... but nothing in it runs
    assert not live, f"a submission's script is live in formgrader's feedback: {live}"
    cli("release", A)
    cli("autograde", "--no-progress")
    cli("feedback")

    def entries(log):
        out = {}
        for line in log.read_text().splitlines():
            e = json.loads(line)
            out.setdefault(e["converter"], []).append(e)
        return out

    ui, got = entries(log_ui), entries(log_cli)
    assert sorted(ui) == sorted(got) == ["Autograde.autograde", "Autograde.sanitize", "GenerateAssignment",
                                         "GenerateFeedback"]
    problems = []
    for conv in sorted(ui):
        ui_kinds = {json.dumps(split_per_run(e)[0], sort_keys=True) for e in ui[conv]}
        cli_kinds = {json.dumps(split_per_run(e)[0], sort_keys=True) for e in got[conv]}
        assert len(ui_kinds) == 1 and len(cli_kinds) == 1, conv   # one chain per step, everywhere
        problems += differences(json.loads(ui_kinds.pop()), json.loads(cli_kinds.pop()))
    assert not problems, "\n".join(problems)
