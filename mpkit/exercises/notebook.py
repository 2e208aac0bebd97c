"""Reading submissions: which files, whether each is a notebook of this assignment, which cells run.

A submitted file is data of unknown shape: `read` checks the JSON structure itself (cells a list,
sources text, tags a list of strings) and raises `Invalid` with a sentence for anything else, so a
malformed notebook costs its own submission and never the run. `collect` walks folders without
following links, and a link that points out of the folder it was found in is refused, not read.
"""
from __future__ import annotations

import ast
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpkit.exercises.spec import SPEC_TAG

MAX_BYTES = 20 * 2**20  # an exercise notebook without outputs is ~50 kB; with outputs a few MB
MAX_CELL_CHARS = 500_000


class Invalid(Exception):
    """A submission that cannot be graded at all; the message says why, for the student."""


@dataclass(frozen=True)
class Found:
    """A notebook to grade; ``refused`` (non-empty) says why it will not be read."""

    path: Path
    root: Path
    refused: str = ""


@dataclass
class Notebook:
    """The parts of a submitted notebook the grader uses."""

    path: Path
    cells: list[tuple[int, str, str, list[str]]] = field(default_factory=list)  # (index, type, source, tags)
    generated_from: str = ""

    def chapter(self) -> str:
        """The chapter this notebook says it is (``01_neural_networks``), from its metadata or else its name."""
        return Path(self.generated_from).stem if self.generated_from.endswith(".ipynb") else self.path.stem


def _inside(path: Path, root: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) == base


def collect(paths: Sequence[str | Path]) -> list[Found]:
    """The notebooks to grade: files as given, folders searched for ``*.ipynb`` (links not followed)."""
    found: list[Found] = []
    for p in map(Path, paths):
        if not os.path.lexists(p):
            raise FileNotFoundError(f"no such file or folder: {p}")
        if not p.is_dir() or p.is_symlink():
            why = "" if _inside(p, p.parent) else "a link to a file outside its folder: not read"
            found.append(Found(p, p.parent, why or ("" if p.is_file() else "not a regular file")))
            continue
        for top, dirs, files in os.walk(p):  # followlinks=False: a linked folder is not entered
            dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
            for name in sorted(f for f in files if f.endswith(".ipynb")):
                q = Path(top, name)
                why = "" if _inside(q, p) else "a link to a file outside the submission folder: not read"
                found.append(Found(q, p, why or ("" if q.is_file() else "not a regular file")))
    return found


def _tags(meta: Any) -> list[str]:
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _cell(i: int, cell: Any) -> tuple[int, str, str, list[str]]:
    if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
        raise Invalid(f"not a valid notebook: cell {i + 1} is not a cell")
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    if not isinstance(source, str):
        raise Invalid(f"not a valid notebook: the source of cell {i + 1} is not text ({type(source).__name__})")
    if len(source) > MAX_CELL_CHARS:
        raise Invalid(f"cell {i + 1} holds {len(source):,} characters (at most {MAX_CELL_CHARS:,})")
    return i, cell["cell_type"], source, _tags(cell.get("metadata"))


def _load(data: bytes) -> dict[str, Any]:
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise Invalid(f"not a valid notebook: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise Invalid(f"not a valid notebook (JSON error at line {err.lineno}, column {err.colno}: {err.msg})") \
            from None
    except RecursionError:
        raise Invalid("not a valid notebook: its JSON is nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Invalid("not a valid notebook (it has no list of cells)")
    if nb.get("nbformat") != 4:
        raise Invalid(f"not a valid notebook: format {str(nb.get('nbformat'))[:10]}, expected 4 (save it from Jupyter)")
    return nb


def read(found: Found) -> Notebook:
    """Read and check one submission; raises `Invalid`."""
    if found.refused:
        raise Invalid(found.refused)
    try:
        with open(found.path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise Invalid(f"cannot read the file: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise Invalid(f"the file is larger than {MAX_BYTES // 2**20} MB (clear the outputs and save it again)")
    nb = _load(data)
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    mp = meta.get("mpkit") if isinstance(meta.get("mpkit"), dict) else {}
    origin = mp.get("generated_from") if isinstance(mp.get("generated_from"), str) else ""
    return Notebook(found.path, [_cell(i, c) for i, c in enumerate(nb["cells"])], origin[:200])


def _is_check(source: str) -> bool:
    """A cell that only calls ``...check(...)``: the notebook's own self-check, not run by the grader."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, MemoryError, RecursionError, ValueError):
        return False
    return bool(tree.body) and all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and
                                   isinstance(s.value.func, (ast.Name, ast.Attribute)) and
                                   (getattr(s.value.func, "attr", None) or getattr(s.value.func, "id", "")) == "check"
                                   for s in tree.body)


def runnable(nb: Notebook) -> list[tuple[int, str]]:
    """``(index, source)`` of the code cells the grader runs: not the spec cells, not the check calls."""
    return [(i, src) for i, kind, src, tags in nb.cells if kind == "code" and src.strip()
            and SPEC_TAG not in tags and not _is_check(src)]
