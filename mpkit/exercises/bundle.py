"""The Gradescope autograder bundle of one chapter: ``python -m mpkit gradescope NN_topic --out DIR``.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once as root to build the
image, then ``run_autograder`` for every submission, which must leave ``/autograder/results/results.json``.
The bundle carries this mpkit, the pinned ``requirements.txt`` and the chapter's spec cells only (no
solutions: the spec cells are the ones every student's exercise notebook shows anyway). The grader's
cases are drawn with fresh secret seeds in every run.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import nbformat

from mpkit.exercises.isolation import MPKIT_DIR
from mpkit.exercises.spec import SPEC_TAG, load_chapter

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or 24.04).
set -euo pipefail
cd /autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# bubblewrap: one sandbox per submission; util-linux: setpriv and prlimit.
apt-get install -y -qq bubblewrap util-linux ca-certificates
apt-get install -y -qq python3.11 python3.11-venv || apt-get install -y -qq python3 python3-venv
PYTHON=$(command -v python3.11 || command -v python3)
"$PYTHON" -m venv /autograder/venv
# torch's CPU wheels (PyPI's default build pulls gigabytes of CUDA libraries)
/autograder/venv/bin/pip install -q --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
/autograder/venv/bin/pip install -q --no-deps /autograder/source
/autograder/venv/bin/pip check
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the student's upload into results/results.json.
# AUTOGRADER_ROOT and MPKIT_PYTHON are for testing the bundle outside Gradescope.
set -u
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{MPKIT_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
export PYTHONPATH="$ROOT/source" OMP_NUM_THREADS=1
"$PY" -m mpkit grade "$ROOT/submission" --chapter {chapter} --solutions "$ROOT/source/specs" \\
    --gradescope "$ROOT/results/results.json" --jobs 1 --budget {budget:g}
status=$?
# exit status 1 (the grader failed on the notebook) still leaves a results.json that says so
[ -s "$ROOT/results/results.json" ] || echo '{{"score": 0, "output": "the grader did not run", "tests": []}}' \\
    > "$ROOT/results/results.json"
exit $status
"""


def spec_notebook(solution: Path) -> nbformat.NotebookNode:
    """A notebook with only the ``exercise-spec`` cells of ``solution`` (the tests, no answers)."""
    nb = nbformat.read(solution, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and SPEC_TAG in (c.metadata.get("tags") or [])]
    out = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source, metadata={"tags": [SPEC_TAG]})
                                          for c in cells])
    out.metadata["mpkit"] = {"kind": "specs", "generated_from": f"solutions/{solution.name}"}
    return out


def write(chapter: str, solutions: Path | None, out: Path, *, budget: float = 600.0) -> Path:
    """Write the bundle folder ``out`` and ``out.zip``; returns ``out``. Loads the chapter first, so a
    spec that does not load (a banned name that does not resolve) fails here, not on Gradescope."""
    solution = Path(solutions or "solutions") / f"{chapter}.ipynb"
    if not solution.is_file():
        raise FileNotFoundError(f"no spec notebook {solution}: pass --solutions DIR")
    load_chapter(solution)
    requirements = MPKIT_DIR.parent / "requirements.txt"
    if not requirements.is_file():
        raise FileNotFoundError(f"no {requirements}: run this from a clone of the repository")
    if out.exists():
        shutil.rmtree(out)
    (out / "specs").mkdir(parents=True)
    shutil.copytree(MPKIT_DIR, out / "mpkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("requirements.txt", "pyproject.toml", "README.md"):
        if (MPKIT_DIR.parent / name).is_file():
            shutil.copy2(MPKIT_DIR.parent / name, out / name)
    nbformat.write(spec_notebook(solution), out / "specs" / f"{chapter}.ipynb")
    (out / "setup.sh").write_text(SETUP)
    (out / "run_autograder").write_text(RUN.format(chapter=chapter, budget=budget))
    for script in ("setup.sh", "run_autograder"):
        (out / script).chmod(0o755)
    with zipfile.ZipFile(out.with_suffix(".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(out)))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return out
