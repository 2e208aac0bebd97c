"""Inside the sandbox: run a submission's cells, then call its functions on the grader's cases.

``python -m mpkit.exercises._runner IN_DIR``. Everything in this process belongs to the student: the
grader outside trusts none of it and only reads what comes out (`mpkit.exercises.wire` values, small
JSON messages, on the process's stdout; the student's own prints go to /dev/null). The steps:

1. before any student code: the resource limits, the originals this file relies on, the tracer's marks,
   the watch on fork hooks (`mpkit.exercises._inside`);
2. the cells, in an in-process IPython shell, each under a time limit (an interrupt);
3. "cells_done": the grader stops every process the notebook started and says "fork"; the child
   (one thread: threads the notebook started do not exist in it) keeps the notebook's state; this
   process becomes a small waiter, so those threads end too. The grader stops what those threads may
   have started meanwhile, writes the cases, and says "go";
4. per exercise, a fresh ``fork`` of that child (builtins restored; refused if a thread or a fork hook
   of the notebook runs in it) calls the function on each case, traced; a call that hangs or dies
   costs that exercise only.
"""
from __future__ import annotations

import gc
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from mpkit.exercises import _inside, trace, wire
from mpkit.exercises._inside import Channel

_read, _fork, _exit, _kill = os.read, os.fork, os._exit, os.kill
_waitpid, _setpgid, _killpg, _monotonic, _sleep = os.waitpid, os.setpgid, os.killpg, time.monotonic, time.sleep
_signal, _setitimer, _settrace, _setprofile = signal.signal, signal.setitimer, sys.settrace, sys.setprofile
_dtype, _grad = torch.set_default_dtype, torch.set_grad_enabled
_seed, _rseed, _loads = torch.manual_seed, random.seed, json.loads
WAITER = ("import os\nwhile True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        break\n"
          "    except InterruptedError:\n        pass\n")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("the cell ran out of time")


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Shell(InteractiveShell):
        def enable_gui(self, gui: str | None = None) -> None:
            """No event loop here: ``%matplotlib inline`` and friends only choose the backend."""

    config = Config()
    config.HistoryManager.enabled = False  # no history thread, no sqlite file
    return Shell.instance(config=config)


def _reset(devnull: int) -> None:
    """Undo what a cell may have done to this file's machinery: tracers, the alarm handler, stdout/stderr."""
    _setitimer(signal.ITIMER_REAL, 0)
    _settrace(None)
    _setprofile(None)
    _signal(signal.SIGALRM, _interrupt)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def run_cells(shell: Any, cfg: dict[str, Any], chan: Channel, devnull: int) -> None:
    """Run every cell not in ``cfg["skip"]``, each within the cell limit and all within the notebook's."""
    deadline, skip = _monotonic() + cfg["notebook"], set(cfg["skip"])
    for index, source in cfg["cells"]:
        if index in skip:
            continue
        left = deadline - _monotonic()
        if left <= 0:
            chan.send(t="late", i=index)
            return
        chan.send(t="cell", i=index)
        error, seconds = "", min(cfg["cell"], left)
        try:
            _signal(signal.SIGALRM, _interrupt)
            _setitimer(signal.ITIMER_REAL, seconds)
            result = shell.run_cell(source, store_history=False)
            _setitimer(signal.ITIMER_REAL, 0)
            err = result.error_before_exec or result.error_in_exec
            if err is not None:
                error = f"{type(err).__name__}: {str(err)[:300]}"
        except BaseException as err:  # noqa: BLE001 - the student's code may raise anything, anywhere
            error = f"{type(err).__name__}: {str(err)[:300]}"
        _reset(devnull)
        chan.send(t="cell_end", i=index, error=error, timeout=error.startswith("KeyboardInterrupt"))


def call_case(fn: Any, kwargs: dict[str, Any], banned: set[str], marks: trace.Marks,
              prints: set[str]) -> tuple[dict[str, Any], Any]:
    """One traced call: the record (raised, type, aliases, hits, tampered) and the output."""
    _dtype(torch.float32), _grad(True), _seed(0), _rseed(0)  # whatever the notebook set
    rec: dict[str, Any] = {"raised": None, "hits": []}
    out, caught, stop = None, None, trace.watch(marks, banned, prints, rec["hits"])
    try:
        out = fn(**kwargs)
    except trace.Banned:
        pass
    except BaseException as err:  # noqa: BLE001
        caught = [type.__dict__["__name__"].__get__(type(err))[:80], "(its message could not be read)"]
        try:
            caught[1] = str(err)[:300]  # still traced: the message is the student's code too
        except BaseException:  # noqa: BLE001
            pass
    finally:
        rec["tampered"] = stop()
    rec["raised"] = caught
    rec["type"] = type.__dict__["__name__"].__get__(type(out))[:80]
    rec["aliases"] = trace.aliases(out, kwargs)
    return rec, out


def call_exercise(name: str, fn: Any, cfg: dict[str, Any], chan: Channel, marks: trace.Marks) -> None:
    """In a fresh child: every case of ``name``, one message (record, output, inputs after) per case."""
    _setpgid(0, 0)
    _inside.restore_builtins()
    if intruder := _inside.intruders():  # code of the notebook runs in this process already: no inputs for it
        chan.send([], t="case", ex=name, i=0, raised=None, type="NoneType", aliases=[], tampered=False,
                  hits=[trace.THREAD if intruder == "thread" else trace.FORK_HOOK], out={"k": "none"},
                  after={"k": "none"})
        _exit(0)
    node = _loads(_inside.slurp(f"{cfg['in']}/{name}.json"))
    cases = wire.decode(node, _inside.slurp(f"{cfg['in']}/{name}.bin"), 2**40)
    banned, prints = set(cfg["banned"].get(name, [])), set(cfg["prints"])
    for i, kwargs in enumerate(cases):
        chan.send(t="case_start", ex=name, i=i)
        rec, out = call_case(fn, kwargs, banned, marks, prints)
        blobs: list[bytes] = []
        offset = [0]
        rec["out"] = wire.encode(out, blobs, offset)
        rec["after"] = wire.encode(kwargs, blobs, offset)
        chan.send(blobs, t="case", ex=name, i=i, **rec)
    _exit(0)


def _wait(pid: int, seconds: float) -> str:
    """``done``, ``died`` or ``timeout`` (then the child and its process group are killed)."""
    deadline = _monotonic() + seconds
    while _monotonic() < deadline:
        done, status = _waitpid(pid, os.WNOHANG)
        if done:
            return "done" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "died"
        _sleep(0.005)
    for kill in (lambda: _killpg(pid, signal.SIGKILL), lambda: _kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    _waitpid(pid, 0)
    return "timeout"


def _reap() -> None:
    """Collect every child that has ended (the notebook's, stopped by the grader)."""
    while True:
        try:
            if _waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def serve(ns: dict[str, Any], cfg: dict[str, Any], chan: Channel, marks: trace.Marks) -> None:
    """The notebook's state, single-threaded: wait for "go", then each exercise in its own child."""
    gc.disable()  # no student __del__ runs here
    _inside.restore_builtins()
    for sig in (signal.SIGALRM, signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        _signal(sig, signal.SIG_DFL)
    chan.send(t="ready")
    if not _read(0, 16).startswith(b"go"):
        _exit(3)
    for name in cfg["exercises"]:
        fn = ns.get(name)
        chan.send(t="ex", name=name, defined=callable(fn))
        if callable(fn):
            pid = _fork()
            if pid == 0:
                try:
                    call_exercise(name, fn, cfg, chan, marks)
                finally:
                    _exit(4)
            chan.send(t="ex_end", name=name, kind=_wait(pid, cfg["call"]))
    chan.send(t="end")
    _exit(0)


def main(in_dir: str) -> None:
    """The whole run (see the module docstring); this process never returns to its caller."""
    chan = Channel(os.dup(1))  # not inherited by what the notebook starts
    devnull = os.open(os.devnull, os.O_RDWR)
    cfg = json.loads((Path(in_dir) / "config.json").read_text())
    _inside.set_limits(cfg["limits"])
    _inside.guard()
    marks, missing = trace.markers(b for names in cfg["banned"].values() for b in names)
    if missing:
        chan.send(t="fatal", why=f"banned names that do not resolve in the sandbox: {', '.join(missing)}")
        _exit(2)
    shell = _shell()
    _reset(devnull)
    run_cells(shell, cfg, chan, devnull)
    chan.send(t="cells_done")  # the grader now stops the processes the notebook started, then says "fork"
    if not _read(0, 16).startswith(b"fork"):
        _exit(3)
    sys.setswitchinterval(1000.0)  # no other thread runs between the fork and the exec
    for _ in range(100):
        _reap()  # the processes the grader stopped still count against the process limit until reaped
        try:
            pid = _fork()
            break
        except BlockingIOError:  # the notebook's threads started processes again: wait for the grader's next sweep
            _sleep(0.05)
    else:
        chan.send(t="nofork")
        _exit(5)
    if pid == 0:
        serve(shell.user_ns, cfg, chan, marks)
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", WAITER])


if __name__ == "__main__":
    main(sys.argv[1])
