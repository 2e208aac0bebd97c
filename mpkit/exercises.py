"""Exercises: generate exercise notebooks from solution notebooks, and check answers with feedback.

A solution notebook marks each answer inside a function body::

    def softmax(x):
        # BEGIN SOLUTION hint: subtract the row maximum before exponentiating
        ...
        # END SOLUTION

`make_exercise` replaces each region with the hint and ``raise NotImplementedError``. An `Exercise`
describes how to test one function: keyword-argument cases, an independent reference, tolerances.
`check` runs the student's function on those cases and prints what is wrong, case by case.
"""
from __future__ import annotations

import copy
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import torch

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:\s*(?:hint:)?\s*(?P<hint>.*))?$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
DROP_TAG = "remove-in-exercise"  # cells with this tag (e.g. worked answers in prose) are left out


def strip_source(source: str, where: str = "cell") -> str:
    """Replace every ``# BEGIN SOLUTION`` … ``# END SOLUTION`` region with its hint and a ``raise``."""
    out: list[str] = []
    inside: re.Match[str] | None = None
    for lineno, line in enumerate(source.splitlines(), 1):
        if inside is None and (m := BEGIN.match(line)):
            if not m["indent"]:
                raise ValueError(f"{where}, line {lineno}: a solution region must sit inside a function body "
                                 "(indented), so that the exercise notebook still runs to the end")
            inside = m
            continue
        if inside is not None:
            if BEGIN.match(line):
                raise ValueError(f"{where}, line {lineno}: nested '# BEGIN SOLUTION'")
            if END.match(line):
                indent, hint = inside["indent"], (inside["hint"] or "").strip()
                out.append(f"{indent}# TODO: {hint}" if hint else f"{indent}# TODO: your answer here")
                out.append(f'{indent}raise NotImplementedError("exercise not attempted yet")')
                inside = None
            continue
        if END.match(line):
            raise ValueError(f"{where}, line {lineno}: '# END SOLUTION' without a matching BEGIN")
        out.append(line)
    if inside is not None:
        raise ValueError(f"{where}: '# BEGIN SOLUTION' is never closed by '# END SOLUTION'")
    return "\n".join(out)


def make_exercise(nb: nbformat.NotebookNode, source_name: str = "") -> nbformat.NotebookNode:
    """The exercise version of a solution notebook: answers stripped, outputs cleared, metadata marked."""
    ex = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(ex.cells):
        if DROP_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_source(cell.source, where=f"{source_name} cell {i}")
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    ex.cells = cells
    ex.metadata["mpkit"] = {"kind": "exercise", "generated_from": source_name}
    return ex


def render(nb: nbformat.NotebookNode) -> str:
    """Notebook JSON exactly as stored in the repository (stable, so staleness is a string compare)."""
    return nbformat.writes(nb, version=4) + "\n"


BACKUP_DIR = ".backup"  # inside the exercises folder; ignored by git


def generate(src_dir: Path, dst_dir: Path, *, check_only: bool = False) -> list[Path]:
    """Write ``dst_dir/X.ipynb`` for every ``src_dir/X.ipynb``; return the files that differ(ed).

    With ``check_only`` nothing is written: the return value lists stale or missing exercise files.
    An exercise file that is replaced is first copied to ``dst_dir/.backup/X.<time>.ipynb``: it may
    hold a student's answers.
    """
    stale = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for src in sorted(Path(src_dir).glob("*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        text = render(make_exercise(nb, source_name=f"{Path(src_dir).name}/{src.name}"))
        dst = Path(dst_dir) / src.name
        if not dst.exists() or dst.read_text() != text:
            stale.append(dst)
            if check_only:
                continue
            if dst.exists():
                backup = dst.parent / BACKUP_DIR / f"{dst.stem}.{stamp}.ipynb"
                backup.parent.mkdir(exist_ok=True)
                shutil.copy2(dst, backup)
                print(f"kept the previous {dst.name} as {backup}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text)
    return stale


# ---------------------------------------------------------------- checking answers

@dataclass(frozen=True)
class Exercise:
    """How to test one student function.

    ``cases(gen)`` returns a list of keyword-argument dicts (draw randomness from ``gen``);
    ``reference(**kwargs)`` computes the expected output independently (autograd, a torch built-in,
    a closed form). Outputs are tensors, numbers, or tuples of them. ``banned`` names calls the answer
    must not make (e.g. ``"torch.optim.Adam"``); the grader enforces them.
    """

    name: str
    cases: Callable[[torch.Generator], list[dict[str, Any]]]
    reference: Callable[..., Any]
    rtol: float = 1e-6
    atol: float = 1e-8
    hint: str = ""
    banned: tuple[str, ...] = ()
    points: float = 1.0


@dataclass
class Result:
    """Outcome of checking one exercise: status is passed, failed, not attempted or error."""

    name: str
    status: str
    passed: int = 0
    total: int = 0
    feedback: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<{self.name}: {self.status}, {self.passed}/{self.total} cases>"


class ExerciseFailed(AssertionError):
    """An attempted answer that does not match the reference (the message says why)."""


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
    return type(v).__name__ if not isinstance(v, (int, float)) else repr(v)


def _brief(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return str(tuple(v.shape))
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_brief(x) for x in v[:4]) + (", …" if len(v) > 4 else "")
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    return repr(v) if len(repr(v)) <= 40 else type(v).__name__


def describe_args(kwargs: dict[str, Any]) -> str:
    """One short line for a case: tensors by their shape, ``x(3, 4), t=2, grads=((2,), (3, 3))``."""
    return ", ".join(f"{k}{_brief(v)}" if isinstance(v, torch.Tensor) else f"{k}={_brief(v)}"
                     for k, v in kwargs.items())


def compare(actual: Any, expected: Any, *, rtol: float, atol: float, label: str = "output") -> list[str]:
    """Problems with ``actual`` against ``expected`` (empty list: it matches). Checks, in order:
    structure, type, shape, dtype, device, non-finite values, then values with |a-e| <= atol + rtol|e|."""
    if isinstance(expected, (tuple, list)):
        if type(actual) not in (tuple, list) or len(actual) != len(expected):
            return [f"{label}: expected a tuple of {len(expected)} values, got {_describe(actual)}"
                    + (f" of length {len(actual)}" if type(actual) in (tuple, list) else "")]
        return [p for i, (a, e) in enumerate(zip(actual, expected))
                for p in compare(a, e, rtol=rtol, atol=atol, label=f"{label}[{i}]")]
    if isinstance(expected, torch.Tensor):
        if type(actual) is not torch.Tensor and not isinstance(actual, torch.nn.Parameter):
            return [f"{label}: expected a torch.Tensor, got {type(actual).__name__}"]
        if actual.shape != expected.shape:
            return [f"{label}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"]
        if actual.dtype != expected.dtype:
            return [f"{label}: dtype {actual.dtype}, expected {expected.dtype} (keep the input's dtype)"]
        if actual.device.type != expected.device.type:
            return [f"{label}: on {actual.device}, expected on {expected.device}"]
        a, e = actual.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, torch.Tensor) and type(actual) is torch.Tensor and actual.numel() == 1:
            actual = actual.item()
        if type(actual) not in (int, float, bool):
            return [f"{label}: expected a number, got {type(actual).__name__}"]
        a, e = torch.tensor(float(actual), dtype=torch.float64), torch.tensor(float(expected), dtype=torch.float64)
    else:
        return [] if actual == expected else [f"{label}: got {actual!r}, expected {expected!r}"]
    if a.numel() == 0:
        return []
    if not torch.isfinite(a).all() and torch.isfinite(e).all():
        return [f"{label}: {int((~torch.isfinite(a)).sum())} of {a.numel()} values are NaN/inf"]
    err = (a - e).abs()
    if (err > atol + rtol * e.abs()).any():
        rel = float((err / e.abs().clamp_min(1e-300)).max())
        worst = int((err - rtol * e.abs()).flatten().argmax())
        return [f"{label}: max relative error {rel:.3g} > tolerance {rtol:g} "
                f"(element {worst}: got {a.flatten()[worst]:.6g}, expected {e.flatten()[worst]:.6g})"]
    return []


def clone_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a case's keyword arguments (tensors cloned), so no call can change the original."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in kwargs.items()}


def run_case(ex: Exercise, fn: Callable[..., Any], kwargs: dict[str, Any]) -> list[str]:
    """Call ``fn(**kwargs)`` on a copy and compare with the reference; return the problems found.

    Raises ``NotImplementedError`` through, so that callers can report "not attempted".
    """
    expected = ex.reference(**clone_kwargs(kwargs))
    given = clone_kwargs(kwargs)
    actual = fn(**given)
    problems = [f"argument {k!r} was changed in place; compute new tensors instead of modifying inputs"
                for k, v in given.items()
                if isinstance(v, torch.Tensor) and not torch.equal(v, kwargs[k])]
    return problems + compare(actual, expected, rtol=ex.rtol, atol=ex.atol)


def check(ex: Exercise, fn: Callable[..., Any], *, seed: int = 0, strict: bool = True) -> Result:
    """Check ``fn`` against ``ex`` and print per-case feedback.

    An unsolved exercise (``NotImplementedError``) prints "not attempted" and returns. With ``strict``,
    a wrong answer raises `ExerciseFailed` after the feedback, so a solution notebook cannot pass
    with a wrong reference answer.
    """
    cases = ex.cases(torch.Generator().manual_seed(seed))
    result = Result(ex.name, "passed", total=len(cases))
    for i, kwargs in enumerate(cases, 1):
        args = describe_args(kwargs)
        try:
            problems = run_case(ex, fn, kwargs)
        except NotImplementedError:
            result.status = "not attempted"
            print(f"… {ex.name}: not attempted yet — replace `raise NotImplementedError` with your answer.")
            return result
        except Exception as err:  # the student's code raised: report it, do not crash the notebook
            problems = [f"raised {type(err).__name__}: {err}"]
        if problems:
            result.feedback.append(f"case {i} ({args}): " + "; ".join(problems))
            print(f"✗ case {i}/{len(cases)} ({args}):\n    " + "\n    ".join(problems))
        else:
            result.passed += 1
            print(f"✓ case {i}/{len(cases)} ({args})")
    if result.passed < result.total:
        result.status = "failed"
        hint = f"\nHint: {ex.hint}" if ex.hint else ""
        print(f"{ex.name}: {result.passed}/{result.total} cases correct.{hint}")
        if strict:
            raise ExerciseFailed(f"{ex.name}: {result.feedback[0]}{hint}")
    else:
        print(f"{ex.name}: all {result.total} cases correct ✓")
    return result
