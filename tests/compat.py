"""`make test-compat`: are the version ranges that pyproject.toml declares true?

Builds two virtual environments from scratch and installs mpkit into each from a wheel, as the first
cell of every notebook does on Colab (mpkit and its declared ranges beside whatever is there):

- ``floor``: every declared dependency at exactly its lower bound (``>=X`` becomes ``==X``);
- ``newest``: the newest release of each that the package index serves (pip's own constraints,
  such as this machine's cap on torch, still apply and are reported).

Each also gets what a notebook host provides beside mpkit (``KERNEL``: a Jupyter kernel and widgets).
Then every chapter (``notebooks/``) and exercise (``exercises/``) notebook runs alone in an empty
folder in a kernel of that environment, with nothing of this checkout on the path, and the grader
scores one blank exercise notebook.

Re-run it whenever a chapter adds an import: the environments are rebuilt when the declared
dependencies change (their hash is stored in each). Results go to ``_build/compat/report.md``.

    .venv/bin/python tests/compat.py [--env floor|newest] [--notebooks GLOB ...]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "compat"
KERNEL = ["ipykernel", "ipywidgets", "nbclient"]  # what Colab (or any Jupyter) has beside mpkit; nbclient runs the notebooks here
REPORTED = ["torch", "numpy", "scipy", "scikit-learn", "matplotlib", "plotly", "tqdm", "nbformat", "nbclient",
            "jupyter_core", "jupyter_client", "ipykernel", "ipywidgets"]
BOUND = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)\s*(?:,.*)?$")


def declared() -> list[str]:
    """The dependencies of pyproject.toml, e.g. ``["torch>=2.3", ...]``."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def floors(deps: list[str]) -> list[str]:
    """``name==lower bound`` for every dependency; each must have one (a range without a floor is untestable)."""
    out = []
    for d in deps:
        m = BOUND.match(d)
        if not m:
            raise SystemExit(f"pyproject.toml: {d!r} has no lower bound `>=X`; declare one so it can be tested")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("  $", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def wheel() -> Path:
    """mpkit built as a wheel from this checkout (what `pip install git+…` builds on Colab)."""
    d = OUT / "wheel"
    shutil.rmtree(d, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(d), str(ROOT)])
    return next(d.glob("mpkit-*.whl"))


def build_env(kind: str, whl: Path, deps: list[str]) -> Path:
    """The venv ``_build/compat/<kind>``, rebuilt when the declared dependencies change; returns its python."""
    venv = OUT / kind
    py = venv / "bin" / "python"
    key = hashlib.sha256(json.dumps([kind, deps, KERNEL]).encode()).hexdigest()
    stamp = venv / ".deps-hash"
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    if not (stamp.exists() and stamp.read_text() == key):
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(venv)])
        if kind == "floor":
            cons = venv / "floor-constraints.txt"
            cons.write_text("\n".join(floors(deps)) + "\n")
            run(pip + ["install", "-q", "-c", str(cons), *floors(deps), *KERNEL])
        else:
            run(pip + ["install", "-q", "--upgrade", "--upgrade-strategy", "eager", *[d.split(">=")[0] for d in deps],
                       *KERNEL])
        stamp.write_text(key)
    # mpkit itself from the wheel, replacing any older copy; its dependencies are already there
    run(pip + ["install", "-q", "--force-reinstall", "--no-deps", str(whl)])
    run(pip + ["install", "-q", str(whl)])  # must not change anything: the ranges admit what is installed
    run(pip + ["check"])
    return py


def versions(py: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            f"print(json.dumps({{n: m.version(n) for n in {REPORTED!r}}}))")
    return json.loads(subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout)


def check_floor(py: Path, deps: list[str]) -> list[str]:
    """Where the floor environment is not exactly at the declared lower bounds (should be empty)."""
    got = versions_of(py, [f.split("==")[0] for f in floors(deps)])
    from packaging.version import Version

    pairs = [f.split("==") for f in floors(deps)]
    return [f"{n}=={v}: installed {got[n]}" for n, v in pairs if Version(got[n]).release != Version(v).release
            and Version(got[n].split("+")[0]) != Version(v)]


def versions_of(py: Path, names: list[str]) -> dict[str, str]:
    code = f"import importlib.metadata as m, json; print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    return json.loads(subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout)


def kernelspec(py: Path, kind: str) -> Path:
    """A Jupyter data folder whose kernel ``compat-<kind>`` is the environment's python."""
    d = OUT / "kernels" / kind
    spec = d / "kernels" / f"compat-{kind}"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"compat {kind}", "language": "python"}))
    return d


def run_notebook(nb_path: Path, kind: str, py: Path, jupyter_path: Path) -> tuple[bool, float, str]:
    """Execute one notebook alone in an empty folder with the environment's kernel; (ok, seconds, error)."""
    import nbformat
    from nbclient import NotebookClient

    work = Path(tempfile.mkdtemp(prefix=f"compat-{kind}-"))
    shutil.copy(nb_path, work)
    nb = nbformat.read(work / nb_path.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import mpkit, sys\nprint('MPKIT_FROM=' + mpkit.__file__)"))
    env_before = dict(os.environ)
    os.environ.pop("PYTHONPATH", None)  # nothing of this checkout: mpkit must come from the wheel
    os.environ.update(JUPYTER_PATH=str(jupyter_path), OMP_NUM_THREADS="1", MP_PROFILE="quick", MP_DEVICE="cpu")
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=900, kernel_name=f"compat-{kind}",
                       resources={"metadata": {"path": str(work)}}).execute()
        printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        site = str(py.parents[1])
        ok = f"MPKIT_FROM={site}" in printed
        err = "" if ok else f"mpkit was not imported from the environment: {printed.strip()}"
    except Exception as e:  # CellExecutionError carries the traceback of the failing cell
        ok, err = False, re.sub(r"\x1b\[[0-9;]*m", "", str(e))[-1500:]  # without the terminal colours
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        shutil.rmtree(work, ignore_errors=True)
    return ok, time.perf_counter() - t0, err


def grade_smoke(py: Path) -> tuple[bool, str]:
    """The grader, from the environment, scores a blank exercise notebook (0 points, exit status 0)."""
    blank = sorted((ROOT / "exercises").glob("*.ipynb"))[0]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(blank, tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(OMP_NUM_THREADS="1")
        p = subprocess.run([str(py), "-m", "mpkit", "grade", str(Path(tmp) / blank.name),
                            "--solutions", str(ROOT / "solutions"), "--jobs", "1"],
                           cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    return p.returncode == 0, (p.stdout + p.stderr)[-1500:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", choices=["floor", "newest"], action="append", help="default: both")
    ap.add_argument("--notebooks", nargs="*", default=["notebooks/*.ipynb", "exercises/*.ipynb"],
                    help="globs relative to the repository root")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    deps = declared()
    floors(deps)  # fail early on a range without a lower bound
    whl = wheel()
    notebooks = sorted({p for g in args.notebooks for p in ROOT.glob(g)})
    report, failed = [], 0
    for kind in args.env or ["floor", "newest"]:
        print(f"== {kind}", flush=True)
        t0 = time.perf_counter()
        py = build_env(kind, whl, deps)
        setup_s = time.perf_counter() - t0
        vers = versions(py)
        off = check_floor(py, deps) if kind == "floor" else []
        report += [f"## {kind}", "", "versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), "",
                   f"environment ready in {setup_s:.0f} s", ""]
        if off:
            failed += 1
            report += ["**not at the declared lower bounds:** " + "; ".join(off), ""]
        report += ["| notebook | result | seconds |", "|---|---|---|"]
        jp = kernelspec(py, kind)
        for nb in notebooks:
            ok, secs, err = run_notebook(nb, kind, py, jp)
            failed += not ok
            rel = nb.relative_to(ROOT)
            print(f"  {'ok  ' if ok else 'FAIL'} {secs:6.1f} s  {rel}", flush=True)
            if err:
                print("     " + err.replace("\n", "\n     ")[-1500:], flush=True)
            report.append(f"| {rel} | {'passed' if ok else 'FAILED: ' + err.splitlines()[-1][:200] if err else 'FAILED'} "
                          f"| {secs:.0f} |")
        ok, out = grade_smoke(py)
        failed += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} python -m mpkit grade (blank exercise notebook)", flush=True)
        if not ok:
            print("     " + out.replace("\n", "\n     "), flush=True)
        report += [f"| python -m mpkit grade (a blank exercise notebook) | {'passed' if ok else 'FAILED'} | |", ""]
    (OUT / "report.md").write_text("# make test-compat\n\n" + "\n".join(report) + "\n")
    for kind in args.env or ["floor", "newest"]:  # one file per environment, kept across separate runs
        i = report.index(f"## {kind}")
        j = next((k for k in range(i + 1, len(report)) if report[k].startswith("## ")), len(report))
        (OUT / f"report-{kind}.md").write_text("\n".join(report[i:j]) + "\n")
    print("\n".join(report))
    print(f"report: {OUT / 'report.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
