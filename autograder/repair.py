"""Repair a submitted notebook before nbgrader grades it.

nbgrader aborts a student's whole grading on a duplicated grade_id (issue #1083), leaves test
cells a student moved in the wrong place, trusts edited cell metadata (a test cell turned into a
solution cell is no longer restored), and cannot read a corrupt file.  :func:`repair` rebuilds a
gradable notebook from the submission and the released (student) version of the notebook:

- a cell is recognised by its grade_id; the first cell carrying a solution grade_id of the
  release is that exercise's answer (its metadata is restored from the release); later copies
  keep their code but lose their nbgrader metadata (ordinary cells, still executed, marked
  ``cnnlab_duplicate_of`` so that the verifier runs them as answer code too);
- every locked cell of the release (read-only and test cells) is taken from the release, whatever
  the submission did to it (edited, deleted, duplicated, re-typed, moved), and placed where the
  release has it relative to the answers: read-only cells before the first answer go first,
  the others right after the block (the answer and the student's own cells that follow it) of
  the answer that precedes them in the release; nbgrader then restores the hidden tests;
- cells with an unknown grade_id lose their nbgrader metadata;
- a missing answer becomes the release's stub.

The result executes the student's code in the student's order, with the tests where they belong.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import is_locked, is_solution


DUPLICATE_KEY = "cnnlab_duplicate_of"   # cell metadata: a copy of an answer cell, kept as an ordinary cell


@dataclass
class RepairReport:
    """What :func:`repair` changed (empty lists: the submission was already well formed)."""

    problems: list[str] = field(default_factory=list)

    def add(self, msg: str) -> None:
        self.problems.append(msg)


def _gid(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    if isinstance(meta, dict):
        gid = meta.get("grade_id")
        return gid if isinstance(gid, str) else None
    return None


def _plain(cell) -> NotebookNode:
    cell = copy.deepcopy(cell)
    cell.metadata.pop("nbgrader", None)
    return cell


def read_submission(path: Path) -> NotebookNode:
    """Read a submitted notebook leniently; raise ValueError naming the problem if unreadable."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
        data = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{Path(path).name} is not a readable notebook ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError(f"{Path(path).name} is not a notebook (no list of cells)")
    cells = []
    for c in data["cells"]:
        if not isinstance(c, dict) or c.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
        if c["cell_type"] == "code":
            cell = nbformat.v4.new_code_cell(src, metadata=meta)
        elif c["cell_type"] == "markdown":
            cell = nbformat.v4.new_markdown_cell(src, metadata=meta)
        else:
            cell = nbformat.v4.new_raw_cell(src, metadata=meta)
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    meta = data.get("metadata")
    if isinstance(meta, dict):
        nb.metadata.update({k: v for k, v in meta.items() if k in ("kernelspec", "language_info")})
    return nb


def _well_formed(sub, release, solution_ids, locked_ids, rel_by_id) -> bool:
    gids = [_gid(c) for c in sub.cells if _gid(c)]
    if len(gids) != len(set(gids)) or set(gids) != set(rel_by_id):
        return False
    rel_order = [_gid(c) for c in release.cells if _gid(c)]
    if gids != rel_order:
        return False
    return all(c.metadata.get("nbgrader") == rel_by_id[_gid(c)].metadata.get("nbgrader")
               and c.cell_type == rel_by_id[_gid(c)].cell_type for c in sub.cells if _gid(c))


def repair(submission: NotebookNode, release: NotebookNode) -> tuple[NotebookNode, RepairReport]:
    """Return a gradable copy of ``submission`` (see the module docstring) and what was fixed."""
    report = RepairReport()
    rel_cells = release.cells
    rel_by_id = {_gid(c): c for c in rel_cells if _gid(c)}
    solution_ids = [_gid(c) for c in rel_cells if _gid(c) and is_solution(c)]
    locked_ids = [_gid(c) for c in rel_cells if _gid(c) and is_locked(c) and not is_solution(c)]

    if _well_formed(submission, release, solution_ids, locked_ids, rel_by_id):
        nb = copy.deepcopy(submission)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = []
                c.execution_count = None
        nb.metadata = copy.deepcopy(release.metadata)
        return nb, report

    # 1. the student's cells: answers (first copy) and free cells; locked cells dropped
    seen: set[str] = set()
    blocks: dict[str | None, list] = {None: []}  # answer id -> [answer, following free cells]
    order: list[str] = []
    current: str | None = None
    for cell in submission.cells:
        gid = _gid(cell)
        if gid in locked_ids:
            if gid in seen:
                report.add(f"duplicated cell {gid!r} removed")
            seen.add(gid)
            if cell.source.strip() != rel_by_id[gid].source.strip():
                pass  # nbgrader restores the content; reported by nbgrader as a changed cell
            if not is_locked(cell) or is_solution(cell):
                report.add(f"metadata of locked cell {gid!r} restored")
            continue
        if gid in solution_ids and gid not in seen and cell.cell_type == rel_by_id[gid].cell_type:
            seen.add(gid)
            answer = copy.deepcopy(rel_by_id[gid])
            answer.source = cell.source
            answer.outputs = [] if answer.cell_type == "code" else answer.get("outputs")
            if answer.cell_type != "code":
                answer.pop("outputs", None)
            if cell.metadata.get("nbgrader") != rel_by_id[gid].metadata.get("nbgrader"):
                report.add(f"metadata of answer {gid!r} restored")
            current = gid
            order.append(gid)
            blocks[gid] = [answer]
            continue
        plain = _plain(cell)
        if gid is not None:
            if gid in solution_ids:
                report.add(f"duplicated answer cell {gid!r} kept as an ordinary cell")
                plain.metadata[DUPLICATE_KEY] = gid   # still the student's answer code (the verifier runs it)
            else:
                report.add(f"unknown grade_id {gid!r} dropped")
        blocks[current].append(plain)

    # 2. missing answers: the release's stub, placed as in the release
    for gid in solution_ids:
        if gid not in blocks:
            report.add(f"answer {gid!r} missing: the stub was used")
            blocks[gid] = [copy.deepcopy(rel_by_id[gid])]
            # insert after the answer that precedes it in the release, if present
            prev = solution_ids[:solution_ids.index(gid)]
            pos = max((order.index(p) + 1 for p in prev if p in order), default=0)
            order.insert(pos, gid)

    # 3. locked cells from the release, anchored to the answer preceding them in the release
    attached: dict[str | None, list] = {}
    anchor: str | None = None
    for c in rel_cells:
        gid = _gid(c)
        if gid in solution_ids:
            anchor = gid
        elif gid in locked_ids:
            attached.setdefault(anchor, []).append(copy.deepcopy(c))
    placed = [_gid(c) for c in submission.cells if _gid(c) in locked_ids]
    expected = [g for g in locked_ids]
    if placed != expected:
        missing = [g for g in expected if g not in placed]
        if missing:
            report.add(f"missing locked cells restored: {missing}")
        elif sorted(set(placed)) == sorted(expected) and len(placed) == len(expected):
            report.add("locked cells were out of order: put back in place")

    cells = attached.get(None, []) + blocks[None]
    for gid in order:
        cells += blocks[gid] + attached.get(gid, [])
    ids: set[str] = set()
    for c in cells:
        if "id" not in c or c.get("id") in ids:
            c["id"] = uuid.uuid4().hex[:12]
        ids.add(c["id"])
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(release.metadata))
    return nb, report
