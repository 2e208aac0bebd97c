"""Grading: score exercise notebooks, each in its own sandbox, against the instructors' specs.

`grade` loads the chapter's trusted spec cells once (`mpkit.exercises.spec`), draws secret cases,
computes the references here while the sandboxes run, and grades every notebook ``jobs`` at a time:
read and checked as data (`notebook`, `static`), run and called in a sandbox (`driver`), each
result compared here with the reference (`judge`). Nothing the notebook defines takes part in the
comparison. A submission that cannot be graded gets the status ``invalid`` with the reason; only a
failure of the grader itself (``failed``) is an error of the run. The book's grading page explains it.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpkit.exercises import notebook, static, wire
from mpkit.exercises.driver import Submission as Driver
from mpkit.exercises.isolation import INSIDE_IN, Isolation, detect
from mpkit.exercises.judge import STATUSES, ExerciseResult, judge_case, judge_exercise, under_review
from mpkit.exercises.session import Limits
from mpkit.exercises.spec import PRELUDE, SPEC_TAG, Chapter, SpecError, load_chapter

__all__ = ["grade", "Submission", "ExerciseResult", "Limits", "Chapter", "load_chapter", "SpecError", "Refused",
           "PRELUDE", "SPEC_TAG", "STATUSES", "detect"]


class Refused(Exception):
    """The run as asked for would not be safe or not be what was meant (the message says how to fix it)."""


@dataclass
class Submission:
    """A graded notebook. ``status``: ``graded``, ``invalid`` (``error`` says why; it scores 0),
    ``failed`` (the grader itself failed on it) or ``pending``."""

    path: Path
    results: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the notebook: cells that raised, were skipped
    error: str = ""
    seconds: float = 0.0
    status: str = "pending"
    chapter: str = ""
    flags: list[str] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        return self.status == "failed"

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)


@dataclass
class Prepared:
    """What the grader learnt from a submission's source before running it."""

    cells: list[tuple[int, str]]
    flags: list[str]
    static: dict[str, list[str]]
    copies: dict[str, list[str]]


def prepare(nb: notebook.Notebook, chapter: Chapter) -> Prepared:
    """The cells to run and the static checks (in a worker thread: parsing untrusted source takes time)."""
    cells, trees, flags = notebook.runnable(nb), [], []
    aliases_trees = []
    for i, source in cells:
        try:
            tree = static.python_of(source)
        except static.Unparseable as err:
            flags.append(f"cell {i + 1} that cannot be analysed ({err})")
            continue
        if tree is not None:
            trees.append((i, tree))
            aliases_trees.append(tree)
    aliases, _ = static._aliases(aliases_trees)
    for i, tree in trees:
        flags += [f"{f} (cell {i + 1})" for f in static.flags(tree, aliases)]
    prints = set(chapter.reference_prints)
    return Prepared(cells, flags,
                    {ex.name: static.banned_in(aliases_trees, ex.name, ex.banned) for ex in chapter.exercises},
                    {ex.name: static.copies_reference(aliases_trees, ex.name, prints, chapter.reference_names)
                     for ex in chapter.exercises})


def _case_files(chapter: Chapter) -> dict[str, tuple[bytes, bytes]]:
    out = {}
    for ex in chapter.exercises:
        blobs: list[bytes] = []
        node = wire.encode(chapter.cases[ex.name], blobs)
        out[ex.name] = (json.dumps(node, allow_nan=False).encode(), b"".join(blobs))
    return out


class Grader:
    """One run: the chapters (loaded before any submission runs), their references, the isolation."""

    def __init__(self, chapters: dict[str, Chapter], iso: Isolation, limits: Limits, pinned: str | None) -> None:
        self.chapters, self.iso, self.limits, self.pinned = chapters, iso, limits, pinned
        self.references = {name: asyncio.ensure_future(asyncio.to_thread(ch.expected)) for name, ch in chapters.items()}
        self.files = {name: asyncio.ensure_future(asyncio.to_thread(_case_files, ch)) for name, ch in chapters.items()}

    def chapter_for(self, nb: notebook.Notebook) -> Chapter:
        name = nb.chapter()
        if self.pinned and name != self.pinned:
            what = f"the notebook of `{name}`" if nb.generated_from else \
                f"not marked as `{self.pinned}` and named differently"
            raise notebook.Invalid(f"this assignment is `{self.pinned}`; this is {what}: submit the exercise "
                                   f"notebook of `{self.pinned}` you were given")
        if name not in self.chapters:
            raise notebook.Invalid(f"not an exercise notebook: it is not marked as generated from one of "
                                   f"{', '.join(sorted(self.chapters))} and its name matches none")
        return self.chapters[name]

    async def one(self, found: notebook.Found) -> Submission:
        sub, start = Submission(found.path), time.monotonic()
        try:
            nb = await asyncio.to_thread(notebook.read, found)
            chapter = self.chapter_for(nb)
        except notebook.Invalid as err:
            sub.status, sub.error = "invalid", str(err)
            return sub
        sub.chapter = chapter.name
        try:
            prep = await asyncio.to_thread(prepare, nb, chapter)
        except (Exception, RecursionError) as err:  # noqa: BLE001 - source so odd that the checks fail on it
            sub.status = "invalid"
            sub.error = f"the grader cannot analyse this notebook's code ({type(err).__name__})"
            return sub
        results = await self.run(chapter, prep, sub)
        sub.flags = prep.flags
        sub.results = [under_review(r, prep.flags) for r in results] if prep.flags else results
        sub.status, sub.seconds = sub.status if sub.status != "pending" else "graded", time.monotonic() - start
        return sub

    async def run(self, chapter: Chapter, prep: Prepared, sub: Submission) -> list[ExerciseResult]:
        by_name = {ex.name: ex for ex in chapter.exercises}

        def on_case(name: str, i: int, rec: Any) -> Any:
            cases, expected = chapter.cases[name], self.references[chapter.name].result()[name]
            if i >= len(cases):
                return judge_case(by_name[name], rec.__class__(raised="the sandbox sent more results than cases"),
                                  {}, None)
            return judge_case(by_name[name], rec, cases[i], expected[i])

        async def before_go() -> dict[str, tuple[bytes, bytes]]:
            await self.references[chapter.name]
            return await self.files[chapter.name]

        with tempfile.TemporaryDirectory(prefix="mpkit-grade-") as tmp:
            (Path(tmp) / "tmp").mkdir()
            cfg = {"cells": prep.cells, "exercises": [ex.name for ex in chapter.exercises],
                   "in": INSIDE_IN if self.iso.kind == "bwrap" else str(Path(tmp) / "in"),
                   "banned": chapter.banned, "prints": chapter.reference_prints, "cell": self.limits.cell,
                   "notebook": self.limits.notebook, "call": self.limits.call,
                   "limits": _rlimits(self.iso, self.limits)}
            run = await Driver(self.iso, Path(tmp), prep.cells, cfg, self.limits, on_case, before_go).grade()
        sub.notes = run.notes + run.errors
        if run.broken:
            sub.status, sub.error = "failed", f"the grader failed: {run.broken}"
        elif run.invalid:  # nothing the sandbox sent is trusted any more: the whole submission scores 0
            sub.status, sub.error = "invalid", run.invalid
            return [ExerciseResult(ex.name, "error", 0.0, ex.points, [f"not graded: {run.invalid}"])
                    for ex in chapter.exercises]
        return [judge_exercise(ex, run.exercises[ex.name], chapter.cases[ex.name], chapter.banned[ex.name],
                               prep.static[ex.name], prep.copies[ex.name], self.limits) for ex in chapter.exercises]


def _rlimits(iso: Isolation, limits: Limits) -> dict[str, int]:
    out = {"fsize": limits.file_size, "cpu": int(limits.total) + 10, "core": 0}
    if iso.kind == "bwrap":  # without a sandbox these would count all of the user's processes and memory
        out |= {"memory": limits.memory, "nproc": limits.processes}
    return out


def load_chapters(found: Sequence[notebook.Found], solutions: Path, pinned: str | None) -> dict[str, Chapter]:
    """The chapters this run grades, loaded now, before any submission runs (`SpecError` if one cannot be)."""
    if pinned:
        names = {pinned}
    else:  # the Python API without a pinned chapter: each notebook's own (the command line always pins one)
        names = set()
        for f in found:
            try:
                names.add(notebook.read(f).chapter())
            except notebook.Invalid:
                pass
        names = {n for n in names if (solutions / f"{n}.ipynb").is_file()}
    for name in names:
        if not (solutions / f"{name}.ipynb").is_file():
            raise SpecError(f"no spec notebook {solutions / (name + '.ipynb')}: pass --solutions DIR, the folder "
                            "of the instructors' notebooks (solutions/ or exercises/), and the chapter's name")
    return {name: load_chapter(solutions / f"{name}.ipynb") for name in sorted(names)}


async def _grade_all(found: Sequence[notebook.Found], grader_args: tuple, jobs: int,
                     on_done: Callable[[list[Submission]], None] | None) -> list[Submission]:
    grader = Grader(*grader_args)
    gate, subs, writing = asyncio.Semaphore(jobs), [Submission(f.path) for f in found], asyncio.Lock()

    async def one(k: int) -> None:
        async with gate:
            try:
                subs[k] = await grader.one(found[k])
            except Exception as err:  # noqa: BLE001 - the grader failed, not the student: say so, grade the others
                subs[k] = Submission(found[k].path, status="failed",
                                     error=f"the grader failed: {type(err).__name__}: {err}"[:500])
        if on_done:
            async with writing:  # one report write at a time, in a worker thread
                await asyncio.to_thread(on_done, list(subs))
    await asyncio.gather(*(one(k) for k in range(len(found))))
    for task in [*grader.references.values(), *grader.files.values()]:
        if not task.done():
            task.cancel()
    return subs


def grade(paths: Sequence[str | Path | notebook.Found], *, solutions: str | Path, chapter: str | None = None,
          jobs: int | None = None,
          limits: Limits = Limits(), isolation: str | Isolation = "auto", allow_unisolated: bool = False,
          on_done: Callable[[list[Submission]], None] | None = None) -> list[Submission]:
    """Grade every notebook in ``paths`` (files, or folders searched for ``*.ipynb``), ``jobs`` at a time
    (default min(4, CPUs)), against the spec notebooks in ``solutions``; one `Submission` per notebook.

    ``chapter`` pins the assignment (``"01_neural_networks"``): a notebook of another chapter is
    ``invalid``. Without it each notebook is graded as the chapter it says it is. ``isolation``:
    ``auto`` (a sandbox when bubblewrap works here), ``bwrap`` or ``none``; several notebooks without a
    sandbox raise `Refused` unless ``allow_unisolated``. ``on_done(submissions)`` is called after each one.
    Runs its own event loop: call it from a script or the command line, not from a notebook cell.
    """
    found = list(paths) if paths and all(isinstance(p, notebook.Found) for p in paths) else notebook.collect(paths)
    iso = isolation if isinstance(isolation, Isolation) else detect(isolation)
    if iso.kind == "none" and len(found) > 1 and not allow_unisolated:
        raise Refused(f"{len(found)} notebooks and no sandbox ({iso.detail}): one notebook could read or change "
                      "the others and the grader's files. Install bubblewrap (`make bubblewrap`), or pass "
                      "--allow-unisolated if every notebook is yours")
    chapters = load_chapters(found, Path(solutions), chapter)
    jobs = max(1, jobs or min(4, os.cpu_count() or 1))
    return asyncio.run(_grade_all(found, (chapters, iso, limits, chapter), jobs, on_done))
