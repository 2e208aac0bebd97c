"""The trusted side of an assignment: one chapter's exercise specs, the grader's secret cases, its bans.

`load_chapter` runs the ``exercise-spec`` cells of the instructors' notebook (``solutions/NN_x.ipynb``,
or the generated ``exercises/NN_x.ipynb``, which carries the same cells) in the grader's own process,
once, before any submission runs. The grader's cases are drawn with seeds chosen at random per run,
so no notebook can know them in advance; they reach a sandbox only after its notebook has run.
Every banned name must resolve in this torch (`SpecError` otherwise): a ban never silently vanishes.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import torch

from mpkit.exercises.checking import Exercise, clone_kwargs
from mpkit.exercises.trace import fingerprint, resolve

SPEC_TAG = "exercise-spec"
PRELUDE = ("import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
           "import mpkit as mp\nfrom mpkit.exercises import Exercise\n")
AUTOGRAD = ("torch.autograd", "torch.func", "torch.Tensor.backward")
# Every path into autograd ends in the engine's C entry point; the Python wrapper exists from torch 2.3.
ENGINE = "torch._C._ImperativeEngine.run_backward"
ENGINE_WRAPPER = "torch.autograd.graph._engine_run_backward"


class SpecError(Exception):
    """A chapter that cannot be graded as written (no spec cells, a banned name that does not exist)."""


def expand_banned(banned: Sequence[str]) -> list[str]:
    """The names the tracer marks for ``banned``: banning an autograd entry point bans the engine itself;
    banning an optimiser class bans its module (``torch.optim.adam``) and its fused kernel (``torch._fused_adam_``)."""
    out = list(banned)
    if any(b.startswith(AUTOGRAD) for b in banned):
        out += [ENGINE] + ([ENGINE_WRAPPER] if resolve(ENGINE_WRAPPER) is not None else [])
    for b in banned:
        obj = resolve(b)
        if isinstance(obj, type) and obj.__module__.rsplit(".", 1)[-1] == obj.__name__.lower():
            out.append(obj.__module__)
            out += [n for n in (f"torch._fused_{obj.__name__.lower()}_",) if resolve(n) is not None]
    return list(dict.fromkeys(out))


def check_banned(chapter: str, exercises: Sequence[Exercise]) -> dict[str, list[str]]:
    """{exercise: expanded banned names}; raises `SpecError` naming every banned name that does not resolve."""
    missing = [f"{ex.name}: {b}" for ex in exercises for b in ex.banned if resolve(b) is None]
    if resolve(ENGINE) is None:
        missing.append(f"the autograd engine ({ENGINE})")
    if missing:
        raise SpecError(f"{chapter}: banned names that do not exist in torch {torch.__version__}: "
                        f"{'; '.join(missing)}. Without them the ban would silently vanish: fix the spec "
                        "(the name for this torch version) or install the torch version of requirements.txt")
    return {ex.name: expand_banned(ex.banned) for ex in exercises}


def _reference_prints(ns: dict[str, Any], exercises: Sequence[Exercise]) -> list[str]:
    """Fingerprints of the functions the spec cells define, except the case generators."""
    cases = {id(ex.cases) for ex in exercises}
    funcs = [v for v in ns.values() if callable(v) and hasattr(v, "__code__") and id(v) not in cases
             and getattr(v, "__module__", None) == ns["__name__"]]
    funcs += [ex.reference for ex in exercises if hasattr(ex.reference, "__code__")]
    return sorted({fingerprint(f.__code__) for f in funcs})


@dataclass(frozen=True)
class Chapter:
    """The trusted tests of one chapter: its exercises, the grader's cases, the bans, the references' prints."""

    name: str
    exercises: list[Exercise]
    cases: dict[str, list[dict[str, Any]]]
    banned: dict[str, list[str]] = field(default_factory=dict)
    reference_prints: list[str] = field(default_factory=list)
    reference_names: list[str] = field(default_factory=list)

    def expected(self) -> dict[str, list[Any]]:
        """The reference outputs on every case (can take seconds: the grader runs it beside the sandboxes)."""
        return {ex.name: [ex.reference(**clone_kwargs(c)) for c in self.cases[ex.name]] for ex in self.exercises}


def spec_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The sources of the cells tagged ``exercise-spec``."""
    return [c.source for c in nb.cells if c.cell_type == "code" and SPEC_TAG in (c.metadata.get("tags") or [])]


def load_chapter(solution: Path, seeds: Sequence[int] | None = None) -> Chapter:
    """Run the spec cells of ``solution`` here and draw the grader's cases with ``seeds`` (default: two
    secret random seeds, new for every call); raises `SpecError` if the chapter cannot be graded."""
    solution = Path(solution)
    ns: dict[str, Any] = {"__name__": f"mpkit_spec_{solution.stem}"}
    exec(PRELUDE, ns)  # noqa: S102 - the instructors' own spec cells, never a submission's
    cells = spec_cells(nbformat.read(solution, as_version=4))
    for source in cells:
        exec(compile(source, f"{solution} (spec cell)", "exec"), ns)  # noqa: S102
    exercises = [v for v in ns.values() if isinstance(v, Exercise)]
    if not exercises:
        raise SpecError(f"{solution}: no cell tagged {SPEC_TAG!r} defines an Exercise")
    seeds = seeds if seeds is not None else [secrets.randbits(62) for _ in range(2)]
    cases = {ex.name: [c for s in seeds for c in ex.cases(torch.Generator().manual_seed(s))] for ex in exercises}
    names = sorted(k for k, v in ns.items() if callable(v) and getattr(v, "__module__", None) == ns["__name__"]
                   and not any(v is ex.cases for ex in exercises))
    return Chapter(solution.stem, exercises, cases, check_banned(solution.stem, exercises),
                   _reference_prints(ns, exercises), names)
