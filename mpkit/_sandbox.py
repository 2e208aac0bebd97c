"""Run an untrusted notebook in a fresh kernel and call its functions on inputs the grader wrote.

Private helper of `mpkit.grading`. The kernel belongs to the student: the grader never executes or
trusts anything that comes back. The inputs go in as ``torch.save`` files. Each output comes back as a
file that `mpkit.grading` opens with ``torch.load(weights_only=True)``, which yields tensors, numbers
and containers, never code. A JSON record per case comes back too, used only to word the feedback.
The ``_k_*`` functions run *inside* the kernel: their source is sent there, before the student's
code runs, so they keep the originals they rely on.
"""
from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

TIMEOUT = "MpkitCellTimeout"  # ename of the reply nbclient fakes when a cell runs out of time


@dataclass(frozen=True)
class Limits:
    """Seconds allowed per notebook cell, for one run of the notebook, and per exercise's calls."""

    cell: float = 60.0
    notebook: float = 300.0
    call: float = 20.0
    restarts: int = 3  # kernels killed or hung by notebook cells before the grader gives up


@dataclass
class Call:
    """What the kernel produced for one exercise: ``kind`` is done, timeout, died or lost."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)  # written by the kernel: wording only
    message: str = ""


@dataclass
class Run:
    """One submission's run: notes on its notebook (cells skipped, cells that raised), a `Call` per exercise."""

    notes: list[str] = field(default_factory=list)  # cells that killed or hung the kernel, the time limit
    errors: list[str] = field(default_factory=list)  # cells that raised, in the last run of the notebook
    calls: dict[str, Call] = field(default_factory=dict)


def kernel_env() -> dict[str, str]:
    """A clean environment: one thread, CPU only, the quick profile, this mpkit importable."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", MP_DEVICE="cpu",
               MP_PROFILE="quick", MPLBACKEND="Agg", PYTHONHASHSEED="0", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


class Kernel(NotebookClient):
    """One fresh IPython kernel working in ``cwd``: `run` executes a cell with a time limit and keeps
    only its error (so a cell that prints megabytes costs no memory)."""

    def __init__(self, cwd: Path) -> None:
        super().__init__(nbformat.v4.new_notebook(), kernel_name="python3", allow_errors=True,
                         interrupt_on_timeout=True, iopub_timeout=2, startup_timeout=120, shutdown_kernel="immediate",
                         error_on_timeout={"ename": TIMEOUT, "evalue": "", "traceback": []})
        self.cwd, self.ename, self.on_cell_error = cwd, "", self._on_error

    def _on_error(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self.ename = execute_reply["content"].get("ename", "")

    def output(self, outs: list, msg: dict[str, Any], display_id: str | None, cell_index: int) -> None:
        if msg["msg_type"] == "error" and not outs:
            c = msg["content"]
            outs.append(nbformat.v4.new_output("error", ename=str(c.get("ename", ""))[:80],
                                               evalue=str(c.get("evalue", ""))[:300], traceback=[]))

    async def start(self) -> None:
        """Start the kernel process and its client (raises if the kernel cannot start)."""
        self.km = self.create_kernel_manager()
        await self.async_start_new_kernel(cwd=str(self.cwd), env=kernel_env(), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)  # C-level floods, crash dumps
        await self.async_start_new_kernel_client()

    async def run(self, source: str, timeout: float) -> tuple[str, str]:
        """Execute ``source``: ``("ok" | "error" | "timeout" | "died", "Ename: message")``."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells, self.timeout, self.ename = [cell], max(1, math.ceil(timeout)), ""
        try:
            await self.async_execute_cell(cell, 0, store_history=False)
        except Exception as err:  # DeadKernelError, or a channel error because the kernel is gone
            if isinstance(err, DeadKernelError) or not await ensure_async(self.km.is_alive()):
                return "died", ""
            raise
        if self.ename == TIMEOUT:
            return "timeout", ""
        errors = [o for o in cell.outputs if o.output_type == "error"]
        return ("error", f"{errors[0].ename}: {errors[0].evalue}") if errors else ("ok", "")

    async def responsive(self) -> bool:
        """Whether the kernel answers a trivial cell (after an interrupt it may still be stuck)."""
        return (await self.run("pass", 3))[0] == "ok"

    async def stop(self) -> None:
        """Stop the client and kill the kernel process."""
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None and self.km.has_kernel:
            await ensure_async(self.km.shutdown_kernel(now=True))


# ------------------------------------------------------------------------------------------------
# These four run inside the kernel: their source is sent there. No annotations, imports inside.

def _k_markers(banned):
    """{code: [labels]} of the banned Python functions, {id: [labels]} of the banned C functions."""
    import importlib, inspect, sys, threading  # noqa: E401
    codes, cfuncs = {}, {}

    def mark(obj, label, depth=0):
        fn = inspect.unwrap(obj) if callable(obj) else obj
        if inspect.ismodule(obj) or isinstance(obj, type):  # a module or class: everything defined in it
            module = obj.__name__ if inspect.ismodule(obj) else obj.__module__
            for v in list(vars(obj).values()):
                v = getattr(v, "__func__", v)
                if depth < 2 and callable(v) and getattr(v, "__module__", None) == module:
                    mark(v, label, depth + 1)
        elif hasattr(fn, "__code__"):  # not a code that a factory shares with siblings (F.max_pool1d/2d)
            home = vars(sys.modules.get(fn.__module__, sys))
            if not any(getattr(v, "__code__", None) is fn.__code__ and v is not fn for v in list(home.values())):
                codes.setdefault(fn.__code__, []).append(label)
        elif callable(obj):  # a builtin such as torch.conv2d: the module keeps it alive, so its id is its own
            cfuncs.setdefault(id(obj), []).append(label)

    for dotted in sorted(banned, key=lambda b: -b.count(".")):  # the most precise name first
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                for p in parts[i:]:
                    obj = getattr(obj, p)
            except ImportError:
                continue
            except AttributeError:
                break
            mark(obj, dotted)
            break
    for f in (sys.setprofile, sys.settrace, threading.setprofile, threading.settrace):
        mark(f, "<tamper>")
    return codes, cfuncs


def _k_watch(codes, cfuncs, G, hits, banned):
    """Trace every call until the returned stop(); raise G["Banned"] into the first banned one."""
    stopped = []

    def hook(frame, event, arg):
        if stopped:
            return
        if event == "call":
            labels = codes.get(frame.f_code, ())
        elif event == "c_call":
            labels = cfuncs.get(id(arg), ())
        else:
            return
        label = next((lab for lab in labels if lab in banned or lab == "<tamper>"), None)
        if label:  # the verdict is known: stop the function now
            hits.add(label)
            stopped.append(label)
            raise G["Banned"](label)  # Python unsets a profile hook that raises

    def stop():  # True when the function removed the hook or reached for the tracing functions
        intact = G["getprofile"]() is hook or bool(stopped)
        stopped.append(None)
        G["setprofile"](None)
        G["tsetprofile"](None)
        return not intact or "<tamper>" in hits

    G["tsetprofile"](hook)  # threads the function starts, then this one (in this order: no self-report)
    G["setprofile"](hook)
    return stop


def _k_setup(banned):
    """Before any student code: keep the originals the grader relies on; mark the banned code."""
    import functools, json, random, sys, threading  # noqa: E401
    import torch

    class Banned(BaseException):
        pass

    G = dict(setprofile=sys.setprofile, getprofile=sys.getprofile, tsetprofile=threading.setprofile,
             Banned=Banned, dtype=torch.set_default_dtype, float32=torch.float32, grad=torch.set_grad_enabled,
             seed=torch.manual_seed, rseed=random.seed, save=torch.save, load=torch.load, dumps=json.dumps, open=open)
    G["watch"] = functools.partial(_k_watch, *_k_markers(banned), G)

    def tensors(v, path):
        if isinstance(v, torch.Tensor):
            return [(path, v)]
        if isinstance(v, (tuple, list)):
            return [t for i, x in enumerate(v) for t in tensors(x, f"{path}[{i}]")]
        if isinstance(v, dict):
            return [t for k, x in v.items() for t in tensors(x, f"{path}[{k!r}]")]
        return []

    def aliases(out, kwargs):  # output tensors that share memory with an input: wording only, never scored alone
        try:
            ptr = lambda t: t.untyped_storage().data_ptr() if t.layout == torch.strided and t.numel() else 0  # noqa
            inputs = {ptr(t): n for k, v in kwargs.items() for n, t in tensors(v, k) if ptr(t)}
            return [f"{n} shares memory with the input {inputs[ptr(t)]!r}" for n, t in tensors(out, "output")
                    if ptr(t) in inputs]
        except Exception:
            return []
    G["aliases"] = aliases
    return G


def _k_call(name, in_path, out_dir, banned, G):
    """Call the student's ``name`` on every case; save each output, the inputs after, and a record."""
    def note():
        with G["open"](f"{out_dir}/meta.json", "w") as f:
            f.write(G["dumps"](meta))

    fn = globals().get(name)
    meta = {"defined": callable(fn), "cases": []}
    note()
    for i, kwargs in enumerate(G["load"](in_path, weights_only=True) if callable(fn) else []):
        rec, hits, stop = {"raised": None}, set(), None
        meta["cases"].append(rec)
        note()  # a case that hangs or kills the kernel leaves this trace
        G["dtype"](G["float32"]), G["grad"](True), G["seed"](0), G["rseed"](0)  # whatever the notebook set
        try:
            stop = G["watch"](hits, banned) if banned else None
            try:
                out = fn(**kwargs)
            except G["Banned"]:
                out = None
            except (Exception, SystemExit) as err:
                out, rec["raised"] = None, [type(err).__name__, str(err)[:300]]
            rec["type"] = type(out).__name__
            rec["aliases"] = G["aliases"](out, kwargs)
            try:
                G["save"](out, f"{out_dir}/out{i}.pt")
            except Exception:
                pass  # no file: the grader reports a result it cannot accept
            G["save"](kwargs, f"{out_dir}/in{i}.pt")
        finally:
            rec["tampered"] = stop() if stop else False
        rec["banned"] = [*hits]
        note()


def _setup_cell(banned: list[str]) -> str:
    source = "\n\n".join(inspect.getsource(f) for f in (_k_markers, _k_watch, _k_setup))
    return f"{source}\n__mpkit_grader__ = _k_setup({banned!r})\ndel _k_markers, _k_watch, _k_setup\n"


def _call_cell(name: str, inp: Path, out: Path, banned: list[str]) -> str:
    args = f"{name!r}, {str(inp)!r}, {str(out)!r}, {banned!r}, __mpkit_grader__"
    return f"{inspect.getsource(_k_call)}\n_k_call({args})\ndel _k_call\n"


def _label(i: int, source: str) -> str:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {i + 1} (`{first[:60]}`)"


async def _run_notebook(kernel: Kernel, cells: list[tuple[int, str]], skip: set[int], run: Run,
                        limits: Limits, banned: list[str]) -> int | None:
    """The grader's setup cell, then every cell not in ``skip``; returns a cell that killed or hung the kernel."""
    kind, msg = await kernel.run(_setup_cell(banned), 120)
    if kind != "ok":
        raise RuntimeError(f"the grader could not prepare a kernel ({kind}: {msg})")
    run.errors.clear()
    deadline = time.monotonic() + limits.notebook
    for i, source in cells:
        if i in skip:
            continue
        if (left := deadline - time.monotonic()) <= 0:
            run.notes.append(f"your notebook ran longer than {limits.notebook:g} s: {_label(i, source)} "
                             "and the cells after it were not run")
            return None
        kind, msg = await kernel.run(source, seconds := max(1, math.ceil(min(limits.cell, left))))
        if kind == "timeout" and await kernel.responsive():
            run.errors.append(f"{_label(i, source)} did not finish within {seconds} s and was interrupted")
        elif kind in ("died", "timeout"):
            how = "killed the kernel" if kind == "died" else "hung the kernel (it could not be interrupted)"
            run.notes.append(f"{_label(i, source)} {how}; the notebook was run again without it")
            return i
        elif kind == "error":
            run.errors.append(f"{_label(i, source)} raised {msg}")
    return None


async def _call(kernel: Kernel, name: str, inp: Path, out: Path, banned: list[str],
                limits: Limits) -> tuple[Call, bool]:
    """Call one exercise's function in the kernel; the `Call`, and whether the kernel is still usable."""
    out.mkdir(exist_ok=True)
    kind, msg = await kernel.run(_call_cell(name, inp, out, banned), limits.call)
    try:  # written by the kernel: used to word the feedback, never to score
        meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").stat().st_size < 2**20 else {}
    except (OSError, ValueError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    if kind == "ok":
        return Call("done", meta), True
    if kind == "died":
        return Call("died", meta), False
    if kind == "timeout":
        return Call("timeout", meta), await kernel.responsive()
    return Call("lost", meta, f"the grader's call failed inside your kernel ({msg})"), True


async def run_submission(cells: list[tuple[int, str]], exercises: list[tuple[str, Path, list[str]]],
                         workdir: Path, limits: Limits) -> Run:
    """Run ``cells`` ``[(index, source)]`` in a fresh kernel, then call each exercise's function.

    ``exercises`` is ``[(function name, inputs file, banned names)]``; outputs go to ``workdir/name``.
    A cell that kills or hangs the kernel is skipped and the notebook runs again in a new kernel (at
    most ``limits.restarts`` times); a call that kills or hangs the kernel costs a new kernel too, so
    the exercises after it are still graded.
    """
    run, skip, todo = Run(), set(), list(exercises)
    banned_all = sorted({b for _, _, names in exercises for b in names})
    while todo and len(skip) <= limits.restarts:
        kernel = Kernel(workdir)
        try:
            await kernel.start()
            if (fatal := await _run_notebook(kernel, cells, skip, run, limits, banned_all)) is not None:
                skip.add(fatal)
                continue
            while todo:
                name, inp, banned = todo.pop(0)
                run.calls[name], usable = await _call(kernel, name, inp, workdir / name, banned, limits)
                if not usable:
                    break
        finally:
            await kernel.stop()
    for name, _, _ in todo:
        run.calls[name] = Call("lost", message=f"your notebook killed or hung the kernel {len(skip)} times; "
                                               "the grader gave up")
    return run
