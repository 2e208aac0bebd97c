"""What Colab does: a chapter or an exercise notebook alone in an empty folder, with mpkit installed from its
wheel, still runs.

The notebooks are not executed again here: `make test` runs them once, under nbval, in exactly that
setting (the root ``conftest.py``: each kernel starts in an empty folder of its own with only the
wheel-installed mpkit of ``_build/colab-site`` on its path) and records, per notebook that passed, where
its mpkit came from and its working folder. This test checks those records. (These are the pinned
versions; `make test-compat` runs the same at the declared lower bounds and at the newest releases.)
"""
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "colab-site"
EXECUTED = ROOT / "_build" / "executed"
NOTEBOOKS = sorted(f"{folder}/{p.name}" for folder in ("notebooks", "exercises") for p in (ROOT / folder).glob("*.ipynb"))


def test_the_colab_site_holds_mpkit_from_a_wheel():
    assert (SITE / "mpkit" / "__init__.py").exists(), "no wheel-installed mpkit: run the suite with `make test`"
    records = list(SITE.glob("mpkit-*.dist-info/RECORD"))
    assert records, "mpkit in _build/colab-site was not installed from a wheel"
    installed = {line.split(",")[0] for line in records[0].read_text().splitlines()}
    assert "mpkit/exercises/__init__.py" in installed, "the wheel lacks the mpkit.exercises subpackage"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_ran_alone_with_mpkit_from_the_wheel(name):
    executed = EXECUTED / name
    assert executed.exists(), f"{name} was not executed to the end by this run's nbval (see its failures above), " \
                              "or the suite was not started with `make test`"
    run = nbformat.read(executed, as_version=4).metadata.get("mpkit_run")
    assert run, f"{name}: no record of where mpkit came from (MP_COLAB_SITE was not set)"
    assert Path(run["mpkit"]).resolve().is_relative_to(SITE.resolve()), f"{name} imported mpkit from {run['mpkit']}"
    cwd = Path(run["cwd"])
    assert not cwd.resolve().is_relative_to(ROOT.resolve()) and cwd.name.startswith("mp-colab-"), \
        f"{name} ran in {cwd}, not in an empty folder of its own: {json.dumps(run)}"
