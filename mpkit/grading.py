"""Grading: score exercise notebooks in fresh kernels against the instructors' own tests.

`grade` runs each submission from scratch in a new kernel (`mpkit._sandbox`), calls the student's
functions there on inputs the grader chose (other seeds than the notebook's own checks) and compares
the results *here*, in the grader's process, with the references of the trusted ``exercise-spec`` cells
of ``solutions/<stem>.ipynb``. Nothing that the notebook defines (its own spec and check cells, a
patched ``torch.allclose``, a fake tensor) takes part in the comparison. The book's grading page
explains the statuses and the reports; ``python -m mpkit grade`` is the command line.
"""
from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import torch

from mpkit._sandbox import Call, Limits, run_submission
from mpkit.exercises import Exercise, Problem, clone_kwargs, describe_args, problems
from mpkit.exercises.feedback import changed_inputs, hint_for

SPEC_TAG = "exercise-spec"
SEEDS = (1, 2)  # the grader's cases: the notebook's checks use seed 0, so these are inputs it never showed
PRELUDE = ("import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
           "import mpkit as mp\nfrom mpkit.exercises import Exercise\n")
STATUSES = ("passed", "failed", "not attempted", "error", "timeout")
AUTOGRAD = ("torch.autograd", "torch.func", "torch.Tensor.backward")
ENGINE = "torch.autograd.graph._engine_run_backward"  # every path into autograd goes through it
TAMPER = re.compile(r"\b(setprofile\w*|settrace\w*|input_transformers\w*|ast_transformers|__mpkit_grader__)\b")
MAX_RESULT_BYTES = 256 * 2**20


@dataclass
class ExerciseResult:
    """One exercise of one submission: ``status`` is one of `STATUSES`; the first feedback line first."""

    name: str
    status: str
    score: float
    max_score: float
    feedback: list[str] = field(default_factory=list)


@dataclass
class Submission:
    """A graded notebook; ``error`` says why it could not be graded at all (then it scores 0)."""

    path: Path
    results: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the notebook: cells that raised or were skipped
    error: str = ""
    seconds: float = 0.0
    internal: bool = False  # the grader itself failed on it (e.g. no kernel could start)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)


@dataclass(frozen=True)
class Chapter:
    """The trusted tests of one solutions notebook: its exercises and the grader's cases for each."""

    exercises: list[Exercise]
    cases: dict[str, list[dict[str, Any]]]

    def expected(self) -> dict[str, list[Any]]:
        """The reference outputs on every case (can take seconds: the grader runs it beside the kernel)."""
        return {ex.name: [ex.reference(**clone_kwargs(c)) for c in self.cases[ex.name]] for ex in self.exercises}


def load_chapter(solution: Path, seeds: Sequence[int] = SEEDS) -> Chapter:
    """Run the ``exercise-spec`` cells of ``solution`` here and draw the grader's cases with ``seeds``."""
    ns: dict[str, Any] = {"__name__": f"mpkit_spec_{solution.stem}"}
    exec(PRELUDE, ns)  # noqa: S102 - the instructors' own spec cells, never a submission's
    for cell in nbformat.read(solution, as_version=4).cells:
        if cell.cell_type == "code" and SPEC_TAG in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"{solution} (spec cell)", "exec"), ns)  # noqa: S102
    exercises = [v for v in ns.values() if isinstance(v, Exercise)]
    return Chapter(exercises, {ex.name: [c for s in seeds for c in ex.cases(torch.Generator().manual_seed(s))]
                               for ex in exercises})


def expand_banned(banned: Sequence[str]) -> list[str]:
    """Banning any autograd entry point bans the autograd engine too (``torch.autograd.backward``…)."""
    return [*banned, *([ENGINE] if any(b.startswith(AUTOGRAD) for b in banned) else [])]


def load_untrusted(path: Path) -> tuple[Any, str]:
    """``(value, "")`` from a file the kernel wrote, or ``(None, why not)``; never runs its code."""
    if not path.exists() or path.stat().st_size > MAX_RESULT_BYTES:
        return None, "it cannot be saved as data" if not path.exists() else "it is larger than 256 MB"
    try:
        return torch.load(path, weights_only=True), ""
    except Exception:  # weights_only refuses every class it does not know: fake tensors, custom objects
        return None, "it holds objects other than plain tensors and numbers"


def _parse(source: str) -> ast.Module | None:
    try:  # IPython magics (%pip, !ls) become `pass`
        return ast.parse(re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M))
    except SyntaxError:
        return None


def runnable_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """``(index, source)`` of the code cells the grader runs: not the spec cells, not the check calls."""
    def is_check(tree: ast.Module | None) -> bool:
        return bool(tree and tree.body) and all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and
                                                ast.unparse(s.value.func).split(".")[-1] == "check" for s in tree.body)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
            and SPEC_TAG not in c.metadata.get("tags", []) and not is_check(_parse(c.source))]


def _dotted(node: ast.AST, aliases: dict[str, str], local: set[str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases and node.id not in local:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def static_banned(sources: Sequence[str], fn: str, banned: Sequence[str]) -> list[str]:
    """Banned names that ``fn``, or a notebook function it calls, refers to in its source.

    Imports and simple assignments anywhere in the notebook are aliases (``from torch.optim import
    Adam as A``); a banned ``torch.Tensor.X`` is any ``.X`` of an unknown object (``loss.backward()``).
    """
    aliases, defs = {"torch": "torch"}, {}
    for tree in filter(None, map(_parse, sources)):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                            for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                aliases |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                defs[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if (d := _dotted(node.value, aliases, set())) is not None:
                    aliases[node.targets[0].id] = d
    found, todo, seen = set(), [fn], set()
    while todo:
        if (name := todo.pop()) in seen or name not in defs:
            continue
        seen.add(name)
        local = {a.arg for a in ast.walk(defs[name].args) if isinstance(a, ast.arg)} | {
            n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(defs[name]):
            d = _dotted(node, aliases, local)
            if isinstance(node, ast.Name) and node.id in defs and node.id not in local:
                todo.append(node.id)
            found |= {b for b in banned if d and (d == b or d.startswith(b + "."))}
            found |= {b for b in banned if b.startswith("torch.Tensor.") and isinstance(node, ast.Attribute)
                      and d is None and node.attr == b.rsplit(".", 1)[1]}
    return sorted(found)


def _check_case(ex: Exercise, i: int, rec: dict[str, Any], case: dict[str, Any], expected: Any,
                out: Path) -> tuple[str, list[Problem]]:
    """``("ok" | "failed" | "error", problems)`` for case ``i``, from the files the kernel wrote."""
    if rec["raised"]:
        return "error", [Problem("raised", f"raised {rec['raised']}")]
    actual, why = load_untrusted(out / f"out{i}.pt")
    if why:
        return "failed", [Problem("type", f"the grader does not accept the result, a {rec['type']}: {why}; "
                                  "return torch tensors, Python numbers or tuples of them")]
    after, _ = load_untrusted(out / f"in{i}.pt")
    changed = changed_inputs(case, after if isinstance(after, dict) else {})
    found = [Problem("inplace", f"argument{'s' * (len(changed) > 1)} {', '.join(f'`{c}`' for c in changed)} "
                     f"{'were' if len(changed) > 1 else 'was'} changed in place; "
                     "compute new tensors instead of modifying inputs")] if changed else []
    if ex.fresh:
        found += [Problem("alias", f"{a}: return a new tensor") for a in rec["aliases"]]
    found += problems(actual, expected, rtol=ex.rtol, atol=ex.atol)
    return ("failed" if found else "ok"), found


def _records(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The kernel's per-case records, reduced to plain short strings: they only word the feedback."""
    recs = meta.get("cases") if isinstance(meta.get("cases"), list) else []
    return [{"raised": ": ".join(map(str, r["raised"]))[:300] if isinstance(r.get("raised"), list) else "",
             "type": str(r.get("type"))[:40], "tampered": bool(r.get("tampered")),
             "aliases": [str(a)[:120] for a in r.get("aliases", [])[:8]] if isinstance(r.get("aliases"), list) else [],
             "banned": [b for b in r.get("banned", []) if isinstance(b, str)] if isinstance(r.get("banned"), list) else []}
            for r in recs if isinstance(r, dict)]


def _judge(ex: Exercise, cases: list[dict[str, Any]], expected: list[Any], call: Call, out: Path, static: list[str],
           limits: Limits) -> ExerciseResult:
    """Score one exercise from what its call produced; all-or-nothing: every case must be right."""
    recs = _records(call.meta)
    at = f"case {len(recs)} ({describe_args(cases[min(max(len(recs), 1), len(cases)) - 1])})"
    banned = sorted(set(static) | {b for r in recs for b in r["banned"] if b in expand_banned(ex.banned)})
    symptoms: list[str] = []
    if call.kind == "lost":
        status, feedback = "error", [call.message]
    elif not call.meta.get("defined"):
        status, feedback = "error", [f"`{ex.name}` is not defined after your notebook ran (did its cell fail?)"]
    elif call.kind == "died":
        status, feedback = "error", [f"the kernel died while running your function on {at}: "
                                     "os._exit, a crash or too much memory"]
    elif call.kind == "timeout":
        status, feedback = "timeout", [f"your function did not return within {limits.call:g} s on {at}: an infinite loop?"]
    elif len(recs) != len(cases):
        status, feedback = "error", [f"the grader's calls stopped after {len(recs)} of {len(cases)} cases"]
    elif all(r["raised"].startswith("NotImplementedError") for r in recs):
        status, feedback = "not attempted", ["it still raises NotImplementedError"]
    elif banned:
        names = ", ".join("the autograd engine (backward)" if b == ENGINE else b for b in banned)
        status, feedback = "failed", [f"`{ex.name}` calls {names}, which this exercise asks you to implement yourself"]
    elif any(r["tampered"] for r in recs):
        status, feedback = "failed", ["your function switched off the grader's call tracing (sys.setprofile)"]
    else:
        bad = [(kind, f"case {i + 1}/{len(cases)} ({describe_args(c)}): " + "; ".join(p.text for p in found),
                [p.symptom for p in found]) for i, (r, c, e) in enumerate(zip(recs, cases, expected))
               for kind, found in [_check_case(ex, i, r, c, e, out)] if kind != "ok"]
        status = "error" if any(k == "error" for k, _, _ in bad) else "failed" if bad else "passed"
        feedback = [line for _, line, _ in bad[:3]] + ([f"{len(bad) - 3} more cases are wrong"] if len(bad) > 3 else [])
        symptoms = [s for _, _, found in bad for s in found]
    text = hint_for(symptoms, ex.hints, ex.hint) if status in ("failed", "error") else ""
    hint = [f"Hint: {text}"] if text else []
    return ExerciseResult(ex.name, status, ex.points if status == "passed" else 0.0, ex.points, feedback + hint)


def _read(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        nb = nbformat.reads(text, as_version=4)
    except json.JSONDecodeError as err:
        return None, f"not a valid notebook (JSON error at line {err.lineno}, column {err.colno}: {err.msg})"
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot read the file: {err}"
    except Exception as err:  # nbformat raises several kinds for JSON that is not a notebook
        return None, f"not a valid notebook ({type(err).__name__}: {str(err)[:200]})"
    return (nb, "") if isinstance(nb.get("cells"), list) else (None, "not a valid notebook (it has no cells)")


def _solution_for(nb: nbformat.NotebookNode, path: Path, solutions: Path) -> Path | None:
    meta = nb.metadata.get("mpkit", {})
    names = [Path(str(meta.get("generated_from", ""))).name if isinstance(meta, dict) else "", path.name]
    return next((solutions / n for n in names if n.endswith(".ipynb") and (solutions / n).is_file()), None)


async def _grade_one(path: Path, solutions: Path, chapters: dict[Path, tuple[Chapter, asyncio.Task]],
                     limits: Limits) -> Submission:
    sub, start = Submission(path), time.monotonic()
    nb, sub.error = _read(path)
    if nb is not None and (solution := _solution_for(nb, path, solutions)) is None:
        sub.error = (f"not an exercise notebook: it is not marked as generated from a notebook in {solutions}/ "
                     "and its name matches none; submit the exercise notebook you were given")
    if sub.error:
        return sub
    if solution not in chapters:  # once per chapter; the references are computed while kernels run
        chapter = load_chapter(solution)
        chapters[solution] = chapter, asyncio.ensure_future(asyncio.to_thread(chapter.expected))
    (chapter, references), cells = chapters[solution], runnable_cells(nb)
    sources = [s for _, s in cells]
    if tamper := sorted({m for s in sources for m in TAMPER.findall(s)}):  # code aimed at the grader itself
        why = f"your notebook uses {', '.join(tamper)}, which interferes with the grader: answers not accepted"
        sub.results = [ExerciseResult(ex.name, "failed", 0.0, ex.points, [why]) for ex in chapter.exercises]
        return sub
    with tempfile.TemporaryDirectory(prefix="mpkit-grade-") as tmp:
        work = Path(tmp)
        for ex in chapter.exercises:
            torch.save(chapter.cases[ex.name], work / f"{ex.name}.in.pt")
        run = await run_submission(cells, [(ex.name, work / f"{ex.name}.in.pt", expand_banned(ex.banned))
                                           for ex in chapter.exercises], work, limits)
        expected = await references
        sub.results = [_judge(ex, chapter.cases[ex.name], expected[ex.name], run.calls[ex.name], work / ex.name,
                              static_banned(sources, ex.name, ex.banned), limits) for ex in chapter.exercises]
    sub.notes, sub.seconds = run.notes + run.errors, time.monotonic() - start
    return sub


def collect(paths: Sequence[str | Path]) -> list[Path]:
    """The notebooks to grade: files as given, folders searched recursively for ``*.ipynb``."""
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        files += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts) if p.is_dir() else [p]
    return files


def grade(paths: Sequence[str | Path], *, solutions: Path, jobs: int | None = None,
          limits: Limits = Limits()) -> list[Submission]:
    """Grade every notebook in ``paths`` (see `collect`) against the notebooks in ``solutions``,
    ``jobs`` kernels at a time (default min(4, CPUs)); one `Submission` per notebook, in order.

    Runs its own event loop: call it from a script or the command line, not from a notebook cell.
    """
    files, solutions = collect(paths), Path(solutions)
    gate, chapters = asyncio.Semaphore(jobs or min(4, os.cpu_count() or 1)), {}

    async def one(path: Path) -> Submission:
        async with gate:
            try:
                return await _grade_one(path, solutions, chapters, limits)
            except Exception as err:  # the grader failed, not the student: say so and grade the others
                return Submission(path, error=f"the grader failed: {type(err).__name__}: {err}", internal=True)

    async def main() -> list[Submission]:
        return list(await asyncio.gather(*map(one, files)))
    return asyncio.run(main())
