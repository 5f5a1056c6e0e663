"""nbgrader's Execute step with a sandboxed, limited grading kernel.

:class:`GuardedExecute` runs each notebook in a kernel of its own: a stock ``AsyncKernelManager``
whose kernel spec (:func:`autograder.sandbox.provisioner.grading_kernel_spec`, given for every
kernel name by :class:`~autograder.sandbox.provisioner.GradingKernelSpecs`) names the
``cnnlab-sandbox`` provisioner, which starts the kernel in a fresh bubblewrap sandbox
(:mod:`autograder.sandbox`) and kills every process of it when the notebook is done. Nothing of
one notebook's kernel is used for another.

- a time limit per cell and per notebook; a kernel that dies (segfault, ``os._exit``, out of
  memory) is recorded on the cell where it died and the later cells are marked "not run"; a cell
  that ignores the interrupt sent at its time limit is given a short grace, then its kernel is
  stopped: that cell and the later ones score nothing, the earlier ones keep their results;
- every output is cut to a byte limit per cell (``output_bytes``), and the notebook's outputs to a
  byte limit in all (``notebook_output_bytes``), with a note where output was cut; a cell's
  error and result are kept (cut short) whatever the limits, so that a failed test stays failed;
- figures are built but not drawn unless ``figures`` is set, and the instructor's demonstration
  cells (:mod:`autograder.demos`) are not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Integer, List, Unicode

from . import demos
from .sandbox.provisioner import KERNEL_NAME, PROVISIONER, GradingKernelSpecs, grading_kernel_spec
from .util import Limits

DEFAULT_LIMITS = Limits()

INTERRUPT_GRACE = 3.0     # seconds a cell has to stop after the interrupt at its time limit
NOTEBOOK_OUTPUT_BYTES = 2_000_000
SMALL = 300               # what an error or a result keeps at least, whatever the limits


KERNEL_KILLED = "KernelKilled"   # the error on the cell where the kernel was killed from outside its sandbox
KERNEL_CRASHED = "KernelCrashed"  # ... where the submission's code ended it (known: see SandboxProvisioner.ending)


class KernelStopped(DeadKernelError):
    """The grader stopped a kernel that ignored the interrupt at a cell's time limit."""


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def output_size(out: NotebookNode) -> int:
    """Bytes of an output's text and data."""
    if out.get("output_type") == "stream":
        return len(str(out.get("text", "")).encode("utf-8", "replace"))
    if out.get("output_type") == "error":
        return sum(len(str(t)) for t in out.get("traceback", [])) + len(str(out.get("evalue", "")))
    return sum(len(str(v)) for v in out.get("data", {}).values())


def _cut_error(out: NotebookNode, room: int) -> None:
    """An error keeps its name, the start of its message and its last frames, within ``room``
    bytes (at least :data:`SMALL` of message and of the last frame)."""
    out["evalue"] = str(out.get("evalue", ""))[:max(SMALL, min(4000, room))]
    kept: list[str] = []
    used = len(out["evalue"])
    for frame in reversed([str(t)[:4000] for t in out.get("traceback", [])][-60:]):
        if kept and used + len(frame) > room:
            break
        frame = frame if used + len(frame) <= room else frame[:SMALL]
        kept.append(frame)
        used += len(frame)
    out["traceback"] = kept[::-1]


def limit_output_bytes(cell: NotebookNode, max_bytes: int, note: str | None = None) -> None:
    """Cut the outputs of ``cell`` so that their text and data take about ``max_bytes``.

    What decides a test cell's grade is never dropped: nbgrader scores a test cell by its first
    error (no points) or its first ``execute_result`` (partial credit), so those stay, cut short;
    text and displays past the limit go, with one ``note`` saying so."""
    budget = max_bytes
    kept = []
    cut = False
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "error":
            _cut_error(out, max(budget, 0))
        elif kind == "execute_result":
            if output_size(out) > budget:
                out["data"] = {"text/plain": str(out.get("data", {}).get("text/plain", ""))[:max(SMALL, budget)]}
        elif cut:
            continue
        elif kind == "stream":
            text = str(out.get("text", "")).encode("utf-8", "replace")
            if len(text) > budget:
                out["text"] = text[:max(budget, 0)].decode("utf-8", "ignore") + \
                    "\n" + (note or f"[output cut: more than {max_bytes} bytes]") + "\n"
                cut = True
        elif output_size(out) > budget:
            out = NotebookNode(output_type="stream", name="stdout",
                               text=(note or f"[output removed: more than {max_bytes} bytes]") + "\n")
            cut = True
        budget -= output_size(out)
        kept.append(out)
    cell["outputs"] = kept


def _student_preamble(resources) -> str | None:
    """honest (quiz variants): the code that tells a grading kernel whose submission it runs (None: nothing)."""
    student = ((resources or {}).get("nbgrader") or {}).get("student")
    if not student:
        return None
    try:
        from cnnlab.quiz import kernel_preamble
    except ImportError:
        return None
    return kernel_preamble(student)


def _require_provisioner() -> None:
    """A clear error when the package is not installed (jupyter_client finds its kernel
    provisioner through the package's entry points)."""
    from importlib.metadata import entry_points

    if not entry_points(group="jupyter_client.kernel_provisioners", name=PROVISIONER):
        raise RuntimeError(f"jupyter_client does not know the kernel provisioner {PROVISIONER!r}: the cnnlab "
                           "package is not installed in this environment. Run scripts/setup.sh (it runs "
                           "`pip install -e .`), then grade again.")


class GuardedExecute(Execute):
    """nbgrader's Execute with limits, a kernel in a fresh sandbox and survival of kernel deaths."""

    notebook_timeout = Integer(DEFAULT_LIMITS.notebook_timeout, help="seconds for the whole notebook").tag(config=True)
    memory_mb = Integer(DEFAULT_LIMITS.memory_mb, help="RLIMIT_AS of the kernel in MiB (0: none)").tag(config=True)
    output_bytes = Integer(DEFAULT_LIMITS.output_bytes, help="bytes of output kept per cell").tag(config=True)
    notebook_output_bytes = Integer(NOTEBOOK_OUTPUT_BYTES, help="bytes of output kept per notebook (past "
                                                               "it, a cell keeps its error and result, cut short)").tag(config=True)
    protect = List(Unicode(), help="paths the kernel may not write to (without a sandbox)").tag(config=True)
    locked_file = Unicode("", help="JSON list of sha256 of locked cell sources").tag(config=True)
    files_dir = Unicode("", help="released files copied into the kernel's folder").tag(config=True)
    use_sandbox = Bool(True, help="run the kernel in a bubblewrap sandbox").tag(config=True)
    skip_file = Unicode("", help="JSON list of sha256 of demonstration cells not to run (autograder.demos)").tag(config=True)
    source_directory = Unicode("", help="nbgrader's source folder: where skip_file is not given, the demonstration "
                                        "cells are read from <source_directory>/<assignment>/<notebook>.ipynb").tag(config=True)
    figures = Bool(False, help="render matplotlib figures (off: a one-line placeholder each)").tag(config=True)
    work_folder = Unicode("", help="the work folder whose lock (autograder.util.work_lock) each notebook's run "
                                   "holds: formgrader's Autograde and `nbgrader autograde` refuse while a course "
                                   "command holds it, and hold off the course's commands meanwhile").tag(config=True)

    def __init__(self, *args, **kwargs):
        # the sandbox is killed right after the notebook: a graceful shutdown only waits
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)
        self._deadline = None
        self._stopped = None
        self._grace_until = None
        self._skip: set[str] = set()
        self._output_left = 0
        self.timeout_func = self._cell_timeout

    def _cell_timeout(self, cell) -> int:
        left = (self._deadline - time.monotonic()) if self._deadline else self.timeout
        return max(1, int(min(self.timeout or 1e9, left) + 0.999))

    def create_kernel_manager(self):
        """A stock kernel manager whose only kernel spec is the grading kernel (the
        ``cnnlab-sandbox`` provisioner with this notebook's limits), whatever kernel the
        notebook's metadata names."""
        _require_provisioner()
        spec = grading_kernel_spec(sandboxed=self.use_sandbox, memory_mb=self.memory_mb, figures=self.figures,
                                   locked_file=self.locked_file, files_dir=self.files_dir,
                                   protect=list(self.protect) if not self.use_sandbox else [])
        self.kernel_name = KERNEL_NAME
        self.km = self.kernel_manager_class(kernel_name=KERNEL_NAME, kernel_spec_manager=GradingKernelSpecs(spec=spec),
                                            config=self.config)
        return self.km

    def preprocess(self, nb, resources=None, km=None):
        # honest (quiz variants): whose submission this is, from nbgrader's record (the submitted
        # folder's student id), told to the kernel before the first cell; see _tell_student
        self._preamble = _student_preamble(resources)
        self._deadline = time.monotonic() + self.notebook_timeout
        self._skip = set()
        if self.skip_file:
            with open(self.skip_file) as fh:
                self._skip = set(json.load(fh))
        elif self.source_directory:   # nbgrader's own autograde (formgrader's button): the source notebook
            info = (resources or {}).get("nbgrader", {})
            src = Path(self.source_directory) / str(info.get("assignment", "")) / f"{info.get('notebook', '')}.ipynb"
            if info.get("assignment") and src.is_file():
                import nbformat

                with contextlib.suppress(Exception):
                    self._skip = set(demos.skipped_hashes([nbformat.read(src, as_version=4)]))
        self._stopped = None
        self._output_left = self.notebook_output_bytes
        hold = contextlib.nullcontext()
        if self.work_folder:
            from .util import work_lock

            hold = work_lock(self.work_folder, "nbgrader's autograde (formgrader's Autograde)", wait=0,
                             advice="Autograde it again when that one has finished.")
        try:
            with hold:
                nb, resources = super().preprocess(nb, resources, km)
            self._limit_again(nb)
            return nb, resources
        finally:
            # nbclient shuts the kernel down; this also covers a start that failed halfway
            if self.km is not None and self.km.provisioner is not None:
                from jupyter_core.utils import run_sync

                run_sync(self.km.provisioner.cleanup)()

    def _limit_again(self, nb) -> None:
        """The limits once more, over the whole notebook: ``update_display`` changes the outputs of
        a cell that ran (and was cut and counted) earlier."""
        left = self.notebook_output_bytes
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            room = min(self.output_bytes, left)
            if sum(output_size(o) for o in cell.get("outputs", [])) > room:
                limit_output_bytes(cell, room, None if room == self.output_bytes else
                                   f"[output cut: the notebook's outputs reached their limit of "
                                   f"{self.notebook_output_bytes} bytes while grading]")
            left = max(0, left - sum(output_size(o) for o in cell.get("outputs", [])))

    async def _async_handle_timeout(self, timeout, cell=None):
        now = time.monotonic()
        if self._grace_until is None:
            self._grace_until = now + INTERRUPT_GRACE
            with contextlib.suppress(Exception):
                await self.km.interrupt_kernel()
            await asyncio.sleep(0.05)
            return None
        if now < self._grace_until:
            await asyncio.sleep(0.1)
            return None
        with contextlib.suppress(Exception):
            await self.km.shutdown_kernel(now=True)
        raise KernelStopped(f"the cell ran past its time limit ({timeout} s) and ignored the interrupt: "
                            "its kernel was stopped; later cells were not run")

    def _tell_student(self) -> None:
        """honest (quiz variants): run the student preamble silently in the kernel, once, before the first
        cell (kernels are started, or forked, before the grader knows whose notebook they will run, so
        the id cannot be in their environment)."""
        code, self._preamble = self._preamble, None
        if not code or self.kc is None:
            return
        try:
            reply = self.wait_for_reply(self.kc.execute(code, silent=True, store_history=False, allow_stdin=False))
        except DeadKernelError:
            return   # the first cell records the dead kernel, as it would without the preamble
        if not reply or reply.get("content", {}).get("status") != "ok":
            raise RuntimeError("the grading kernel did not take the submission's student id")

    def _ending(self) -> tuple[str, str]:
        """How the dead kernel ended (see :meth:`SandboxProvisioner.ending`): (who, how)."""
        ending = getattr(getattr(self.km, "provisioner", None), "ending", None)
        if ending is None:
            return "unknown", "how is not known"
        try:
            return ending()
        except Exception as exc:  # noqa: BLE001 - never lose the cell for it
            return "unknown", f"how is not known: {type(exc).__name__}"

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if getattr(self, "_preamble", None):
            self._tell_student()
        self._grace_until = None
        if self._skip and demos.digest(cell.source) in self._skip and not is_grade(cell) and not is_solution(cell):
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=demos.NOTE)]
            cell.execution_count = None
            return cell, resources
        if self._stopped is None and time.monotonic() > self._deadline:
            self._stopped = f"not run: the notebook exceeded its time limit ({self.notebook_timeout} s)"
        if self._stopped is not None:
            cell.outputs = [_error("NotRun", self._stopped)]
            cell.execution_count = None
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except KernelStopped as exc:
            cell.outputs = list(cell.get("outputs", [])) + [_error("TimeoutError", str(exc))]
            self._stopped = "not run: an earlier cell ignored its time limit and its kernel was stopped"
        except DeadKernelError:
            who, how = self._ending()
            if who == "outside":
                err = _error(KERNEL_KILLED, f"the kernel was killed from outside its sandbox while running this cell "
                                            f"({how}): a failure of the grading machine, not of this code; later "
                                            "cells were not run")
            elif who == "itself":
                err = _error(KERNEL_CRASHED, f"the kernel died while running this cell ({how}): this code crashed "
                                             "it (a fault, os._exit, or its memory limit); later cells were not run")
            else:
                err = _error("KernelDied", f"the kernel died while running this cell ({how}: a crash, os._exit, "
                                           "its memory limit, or killed from outside); later cells were not run")
            cell.outputs = list(cell.get("outputs", [])) + [err]
            self._stopped = "not run: the kernel died in an earlier cell"
        room = min(self.output_bytes, self._output_left)
        limit_output_bytes(cell, room, None if room == self.output_bytes else
                           f"[output cut: the notebook's outputs reached their limit of "
                           f"{self.notebook_output_bytes} bytes while grading]")
        self._output_left = max(0, self._output_left - sum(output_size(o) for o in cell.outputs))
        return cell, resources
