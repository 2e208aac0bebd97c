"""The Gradescope autograder bundle, run the way Gradescope runs it, in a temporary root.

``python -m mpkit gradescope 01_neural_networks --out DIR`` writes the bundle and its zip. The test lays
out Gradescope's folders (``source/`` = the unzipped bundle, ``submission/`` = one student's upload,
``results/``), and runs the bundle's ``run_autograder`` with this checkout's venv standing in for what
``setup.sh`` installs on Gradescope. The zip holds no solution, only the spec cells.
"""
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from mpkit.exercises import cli

ROOT = Path(__file__).resolve().parents[1]
CH1 = "01_neural_networks.ipynb"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "autograder_01"
    assert cli.main(["gradescope", "01_neural_networks", "--out", str(out), "--solutions", str(ROOT / "solutions"),
                     "--budget", "120"]) == 0
    return out


def _layout(tmp, bundle, notebooks):
    root = tmp / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle.with_suffix(".zip")) as z:
        z.extractall(root / "source")
    for name, nb in notebooks.items():
        nbformat.write(nb, root / "submission" / name)
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)
    return root


def _run(root):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "AUTOGRADER_ROOT": str(root), "MPKIT_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, timeout=600)
    return done, json.loads((root / "results" / "results.json").read_text())


def test_the_bundle_holds_setup_the_runner_mpkit_and_specs_only(bundle):
    names = set(zipfile.ZipFile(bundle.with_suffix(".zip")).namelist())
    assert {"setup.sh", "run_autograder", "requirements.txt", "pyproject.toml", "mpkit/__init__.py",
            "mpkit/exercises/_runner.py", "specs/01_neural_networks.ipynb"} <= names
    assert not any(n.startswith("solutions/") or "__pycache__" in n for n in names)
    spec = nbformat.read(bundle / "specs" / CH1, as_version=4)
    assert spec.cells and all("exercise-spec" in c.metadata["tags"] for c in spec.cells)
    assert not any("BEGIN SOLUTION" in c.source for c in spec.cells)
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(bundle / script)]).returncode == 0
        assert os.access(bundle / script, os.X_OK)
    setup = (bundle / "setup.sh").read_text()
    assert "bubblewrap" in setup and "-r requirements.txt" in setup and "--no-deps /autograder/source" in setup


def _solved():
    """The chapter-1 exercise notebook (metadata and all) with the solution's answers filled in."""
    nb = nbformat.read(ROOT / "exercises" / CH1, as_version=4)
    answers = {m[1]: c.source for c in nbformat.read(ROOT / "solutions" / CH1, as_version=4).cells
               for m in [re.search(r"^def (\w+)\(", c.source, re.M)] if m}
    for cell in nb.cells:
        if (m := re.search(r"^def (\w+)\(", cell.source, re.M)) and m[1] in answers:
            cell.source = answers[m[1]]
    return nb


def test_run_autograder_grades_the_submission_into_results_json(tmp_path, bundle):
    solved, blank = _solved(), nbformat.read(ROOT / "exercises" / CH1, as_version=4)
    root = _layout(tmp_path, bundle, {"my_homework.ipynb": solved, "notes.ipynb": nbformat.v4.new_notebook()})
    done, results = _run(root)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert results["score"] == 4 and [t["name"] for t in results["tests"]] == [
        "softmax_ce_grad", "mlp_backward", "adam_step", "perceptron_epoch"]
    assert all(t["status"] == "passed" and t["max_score"] == 1 for t in results["tests"])
    assert re.match(r"isolation: (bwrap|none)", done.stdout.decode())
    root2 = _layout(tmp_path / "second", bundle, {"hw.ipynb": blank})
    _, results = _run(root2)
    assert results["score"] == 0 and {t["extra_data"]["status"] for t in results["tests"]} == {"not attempted"}


def test_an_upload_without_the_chapter_notebook_still_gets_results(tmp_path, bundle):
    root = _layout(tmp_path, bundle, {"a.ipynb": nbformat.v4.new_notebook(), "b.ipynb": nbformat.v4.new_notebook()})
    done, results = _run(root)
    assert done.returncode == 0 and results["score"] == 0
    assert "upload exactly one exercise notebook of 01_neural_networks" in results["output"]
