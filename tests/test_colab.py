"""What Colab does: a chapter or an exercise notebook alone in an empty folder, with mpkit installed as a
package, still runs. (These are the pinned versions; `make test-compat` runs the same at the declared
lower bounds and at the newest releases.)"""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(f"{p.parent.name}/{p.name}" for folder in ("notebooks", "exercises") for p in (ROOT / folder).glob("*.ipynb"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """mpkit built as a wheel and installed into a folder of its own, as pip does on Colab."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheels"), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp)
    wheel = next((tmp / "wheels").glob("mpkit-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp / "site"), str(wheel)],
                   check=True, capture_output=True)
    return tmp / "site"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_alone_with_mpkit_installed_from_a_wheel(name, site, tmp_path, monkeypatch):
    work = tmp_path / "colab"
    work.mkdir()
    shutil.copy(ROOT / name, work)
    name = Path(name).name
    nb = nbformat.read(work / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import mpkit\nprint('MPKIT_FROM=' + mpkit.__file__)"))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernel inherits it: mpkit comes from the wheel
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(work)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert f"MPKIT_FROM={site}" in printed, f"mpkit was not imported from the installed wheel: {printed}"
