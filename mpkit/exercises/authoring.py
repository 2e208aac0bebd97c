"""Authoring: exercise notebooks are generated from solution notebooks, never edited by hand.

A solution notebook marks each answer inside a function body::

    def softmax(x):
        # BEGIN SOLUTION hint: subtract the row maximum before exponentiating
        ...
        # END SOLUTION

`make_exercise` replaces each region with the hint and ``raise NotImplementedError`` and leaves out
the cells tagged ``remove-in-exercise`` or ``known-wrong`` (the instructors' list of wrong answers
the checks must reject would be a list of hints).
"""
from __future__ import annotations

import copy
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nbformat is imported where it is used: `import mpkit` in a notebook stays light
    import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:\s*(?:hint:)?\s*(?P<hint>.*))?$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
DROP_TAG = "remove-in-exercise"  # cells with this tag (e.g. worked answers in prose) are left out
KNOWN_WRONG_TAG = "known-wrong"  # cells of wrong answers the checks must reject: left out too
DROP_TAGS = (DROP_TAG, KNOWN_WRONG_TAG)


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
        if set(DROP_TAGS) & set(cell.get("metadata", {}).get("tags", [])):
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
    import nbformat

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
        import nbformat

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
