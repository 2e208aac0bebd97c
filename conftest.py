"""Pytest plugin: one execution of each notebook serves nbval, the book build and its widgets.

nbval runs every notebook cell by cell in a kernel and checks that nothing raises, but it keeps
neither the outputs nor the widget state (tqdm's progress bars). This plugin records both while
nbval runs, and when every cell of a notebook has passed it stores the executed notebook in the
book's execution cache (jupyter-cache, `_build/.jupyter_cache`), keyed as myst-nb keys it: by the
code cells. The book build (`make book`, `tests/test_book.py`) then renders those outputs instead of
executing the notebook a second time. A notebook with a failed or skipped cell is not stored.

With ``MP_COLAB_SITE`` set (``make test`` sets it to a folder where mpkit is installed from its wheel),
the same run is also the Colab scenario: each notebook's kernel starts in an empty folder of its own and
imports mpkit from that folder only, as on Colab after the install cell. Where mpkit came from and the
kernel's working folder are recorded in the executed notebook's metadata (``mpkit_run``), which
``tests/test_colab.py`` checks.
"""
from __future__ import annotations

import base64
import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "_build" / ".jupyter_cache"
EXECUTED = ROOT / "_build" / "executed"  # the same notebooks as files, to look at or to diff
WIDGET_MIME = "application/vnd.jupyter.widget-state+json"

try:
    import nbval.plugin
    from nbval.kernel import RunningKernel, start_new_kernel
    from nbval.plugin import IPyNbCell, IPyNbFile
except ImportError:  # nbval missing: nothing to record
    IPyNbCell = IPyNbFile = None

PROBE = "import json as _j, os as _o, mpkit as _m; print(_j.dumps({'mpkit': _m.__file__, 'cwd': _o.getcwd()}))"


def _colab_kernel(kernel_name, cwd=None, startup_timeout=60):
    """nbval's kernel, started in a fresh empty folder with only the wheel-installed mpkit on PYTHONPATH."""
    kernel = RunningKernel.__new__(RunningKernel)
    kernel.mp_cwd = tempfile.mkdtemp(prefix="mp-colab-")
    env = {**os.environ, "PYTHONPATH": os.environ["MP_COLAB_SITE"]}
    kernel.km, kernel.kc = start_new_kernel(startup_timeout=startup_timeout, kernel_name=kernel_name,
                                            stderr=open(os.devnull, "w"), cwd=kernel.mp_cwd, env=env)
    kernel._ensure_iopub_up()
    return kernel


def _probe(kernel) -> dict:
    """Where the kernel's mpkit comes from and its working folder (run after the notebook's last cell)."""
    import json

    lines = []
    kernel.kc.execute_interactive(PROBE, timeout=30, output_hook=lambda m: lines.append(
        m["content"].get("text", "") if m["msg_type"] == "stream" else ""))
    return json.loads("".join(lines).strip().splitlines()[-1])


def _record_comm(nbfile, msg: dict) -> None:
    """Keep the widget state a comm message carries, as nbclient does (`NotebookClient.handle_comm_msg`)."""
    content = msg["content"]
    data = content.get("data", {})
    if "state" not in data:
        return
    state = nbfile._mp_widgets.setdefault(content["comm_id"], {"state": {}, "buffers": {}})
    state["state"].update(data["state"])
    for path, buf in zip(data.get("buffer_paths") or [], msg.get("buffers") or []):
        state["buffers"][tuple(path)] = {"data": base64.b64encode(buf).decode(), "encoding": "base64", "path": path}


def _widgets_metadata(widgets: dict) -> dict:
    state = {}
    for comm_id, w in widgets.items():
        s = w["state"]
        if "_model_name" in s:
            state[comm_id] = {"model_name": s["_model_name"], "model_module": s.get("_model_module"),
                              "model_module_version": s.get("_model_module_version"), "state": s}
            if w["buffers"]:
                state[comm_id]["buffers"] = list(w["buffers"].values())
    return {WIDGET_MIME: {"state": state, "version_major": 2, "version_minor": 0}}


@contextmanager
def _locked():
    """One writer at a time: the xdist workers share the cache's SQLite database."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / ".jupyter_cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_executed(path: Path, nb: nbformat.NotebookNode) -> None:
    """Write ``nb`` (executed, with outputs) under `EXECUTED` and into the book's execution cache."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    rel = path.resolve().relative_to(ROOT)
    out = EXECUTED / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    with _locked():
        get_cache(str(CACHE)).cache_notebook_bundle(CacheBundleIn(nb, str(path.resolve()), data={}),
                                                    check_validity=False, overwrite=True)


if IPyNbFile is not None:
    _setup, _get_message, _teardown = IPyNbFile.setup, IPyNbFile.get_kernel_message, IPyNbFile.teardown

    def setup(self):
        self._mp_widgets, self._mp_ran = {}, {}  # comm id -> widget state; cell number -> passed
        nbval.plugin.RunningKernel = _colab_kernel if os.environ.get("MP_COLAB_SITE") else RunningKernel
        _setup(self)

    def get_kernel_message(self, timeout=None, stream="iopub"):
        msg = _get_message(self, timeout=timeout, stream=stream)
        if stream == "iopub" and msg["msg_type"] in ("comm_open", "comm_msg"):
            _record_comm(self, msg)
        return msg

    def teardown(self):
        nb, ran = getattr(self, "nb", None), getattr(self, "_mp_ran", {})
        codes = [c for c in nb.cells if c.cell_type == "code"] if nb is not None else []
        if codes and len(ran) == len(codes) and all(ran.values()):
            if self._mp_widgets:
                nb.metadata["widgets"] = _widgets_metadata(self._mp_widgets)
            if self.kernel is not None and self.kernel.is_alive():
                nb.metadata["mpkit_run"] = _probe(self.kernel)
            store_executed(Path(str(self.fspath)), nb)
        _teardown(self)

    IPyNbFile.setup, IPyNbFile.get_kernel_message, IPyNbFile.teardown = setup, get_kernel_message, teardown

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        report = (yield).get_result()
        if isinstance(item, IPyNbCell) and report.when == "call":
            nbfile = item.parent
            outputs = getattr(item, "test_outputs", None) or []
            item.cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs]
            item.cell.execution_count = item.cell_num + 1
            for o in item.cell.outputs:
                if o.output_type == "execute_result":
                    o.execution_count = item.cell.execution_count
            nbfile._mp_ran[item.cell_num] = report.passed
