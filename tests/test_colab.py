"""What Colab does: a chapter alone in an empty folder, with mpkit installed as a package, still runs."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_1_runs_alone_with_mpkit_installed_from_a_wheel(tmp_path, monkeypatch):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "colab"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob("mpkit-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_neural_networks.ipynb", work)

    nb = nbformat.read(work / "01_neural_networks.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import mpkit\nprint('MPKIT_FROM=' + mpkit.__file__)"))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernel inherits it: mpkit comes from the wheel
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(work)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert f"MPKIT_FROM={site}" in printed, f"mpkit was not imported from the installed wheel: {printed}"
