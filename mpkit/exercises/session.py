"""Driving one submission's sandbox from outside: start it, read its messages, enforce the time budget.

The grader's side of `mpkit.exercises._runner`. Every message is untrusted: a line of at most
`MAX_LINE` bytes, strict JSON, checked field by field; a value's bytes are read only after their
declared size has been checked against `Limits.result_bytes`. The event loop never waits on the
sandbox without a deadline. One wall-clock budget (`Limits.total`) covers the whole submission:
start-ups, cells, calls and the re-runs after a cell that killed or hung the notebook.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpkit.exercises import isolation as iso_mod
from mpkit.exercises import procs
from mpkit.exercises.isolation import Isolation

MAX_LINE, GRACE, STARTUP = 2**20, 5.0, 120.0


@dataclass(frozen=True)
class Limits:
    """Seconds per cell, per run of the notebook, per exercise's calls, and for the whole submission
    (all of it: start-ups, re-runs, hung calls); bytes of memory, of one file, of ``/tmp`` and of one result."""

    cell: float = 60.0
    notebook: float = 300.0
    call: float = 20.0
    total: float = 600.0
    restarts: int = 3  # cells that kill or hang the notebook before the grader gives up
    memory: int = 4 * 2**30
    processes: int = 64
    file_size: int = 64 * 2**20
    tmp_size: int = 256 * 2**20
    result_bytes: int = 16 * 2**20
    cpus: float = 1.0  # CPU time per wall-clock second of one sandbox, where a cgroup can cap it


@dataclass
class ExerciseRun:
    """What the sandbox produced for one exercise: ``kind`` is done, timeout, died, lost, too_large or budget."""

    kind: str = "lost"
    defined: bool = True
    cases: list[Any] = field(default_factory=list)  # whatever `on_case` returned, one per case
    started: int = 0  # cases the function was called on


@dataclass
class Run:
    """One submission: notes on the notebook, the cells that raised (last run), one `ExerciseRun` per exercise."""

    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exercises: dict[str, ExerciseRun] = field(default_factory=dict)
    broken: str = ""  # the sandbox could not run at all (the grader's fault): internal error
    invalid: str = ""  # the sandbox's messages broke the protocol


class Protocol(Exception):
    """A message that breaks the protocol (the student's code wrote to the grader's channel)."""


def label(source: str, i: int) -> str:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {i + 1} (`{first[:60]}`)"


def sandbox_env(inside: bool, home: Path) -> dict[str, str]:
    """A clean environment: one thread, CPU only, the quick profile, this mpkit importable."""
    tmp = "/tmp" if inside else str(home)
    return {"PATH": f"{os.path.dirname(iso_mod.python())}:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp,
            "LANG": "C.UTF-8", "PYTHONPATH": iso_mod.INSIDE_MPKIT if inside else str(iso_mod.MPKIT_DIR.parent),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
            "IPYTHONDIR": f"{tmp}/.ipython", "MPLCONFIGDIR": f"{tmp}/.matplotlib", "MPLBACKEND": "Agg",
            "PLOTLY_RENDERER": "json", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
            "MP_DEVICE": "cpu", "MP_PROFILE": "quick", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


class Sandbox:
    """One start of the runner (in a sandbox or not) and its message stream."""

    started = 0

    def __init__(self, iso: Isolation, work: Path, limits: Limits) -> None:
        Sandbox.started += 1
        self.iso, self.work, self.limits = iso, work, limits
        self.name = f"mpkit-{os.getpid()}-{Sandbox.started}"  # the cgroup of this start
        self.proc: asyncio.subprocess.Process | None = None
        self.cgroup, self.killed = False, set()

    async def start(self) -> None:
        inside = self.iso.kind == "bwrap"
        env = sandbox_env(inside, self.work / "tmp")
        fds: tuple[int, ...] = ()
        if inside:  # the arguments go through a file: the sandbox's PID 1 shows no host paths in its cmdline
            cmd, _ = iso_mod.bwrap_command(self.iso, self.work / "in", env, self.limits.tmp_size)
            split = cmd.index("--")
            (self.work / "args").write_bytes(b"".join(a.encode() + b"\0" for a in cmd[1:split]))
            fds = (os.open(self.work / "args", os.O_RDONLY),)
            cmd = [cmd[0], "--args", str(fds[0]), *cmd[split:]]
            if self.iso.cgroups:
                procs_files = self.iso.cgroups.create(self.name, self.limits.memory, self.limits.processes,
                                                      self.limits.cpus)
                cmd, self.cgroup = iso_mod.in_cgroups(procs_files, cmd), True
        else:
            cmd = [iso_mod.python(), "-m", "mpkit.exercises._runner", str(self.work / "in")]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, limit=MAX_LINE, env=env, cwd=self.work / "tmp",
                start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)

    async def message(self, until: float) -> dict[str, Any] | None:
        """The next message, or None at the end of the stream or at ``until`` (monotonic seconds)."""
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.0, until - time.monotonic()))
        except asyncio.TimeoutError:
            return None
        except (ValueError, asyncio.LimitOverrunError):
            raise Protocol(f"a message longer than {MAX_LINE} bytes") from None
        if not line:
            return None
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            raise Protocol("a message that is not JSON") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
            raise Protocol("a message without a type")
        return msg

    async def blob(self, n: int, until: float) -> bytes:
        try:
            return await asyncio.wait_for(self.proc.stdout.readexactly(n), max(0.0, until - time.monotonic()))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            raise Protocol(f"{n} bytes of results announced but not sent") from None

    async def say(self, word: bytes) -> None:
        try:
            self.proc.stdin.write(word + b"\n")
            await asyncio.wait_for(self.proc.stdin.drain(), 30)
        except (OSError, asyncio.TimeoutError):
            pass  # the sandbox is gone: the next message says so

    async def fork(self) -> int:
        """After "cells_done": stop the processes the notebook started, say "fork"; the number stopped."""
        killed = await asyncio.to_thread(procs.stop_strays, self.proc.pid, self.iso.kind == "bwrap", False,
                                         self.killed)
        await self.say(b"fork")
        return killed

    async def go(self, files: dict[str, tuple[bytes, bytes]]) -> int:
        """After "ready": stop every other process in the sandbox, hand over the cases, say "go";
        the number of processes stopped."""
        killed = await asyncio.to_thread(procs.stop_strays, self.proc.pid, self.iso.kind == "bwrap", True,
                                         self.killed)
        for name, (node, blob) in files.items():
            await asyncio.to_thread(_write_case, self.work / "in", name, node, blob)
        await self.say(b"go")
        return killed

    async def stop(self) -> None:
        """Kill the sandbox (everything in it dies with its PID namespace) and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            await asyncio.to_thread(procs.kill_tree, self.proc.pid)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                pass
        if self.cgroup and self.iso.cgroups:
            await asyncio.to_thread(self.iso.cgroups.remove, self.name)


def _write_case(folder: Path, name: str, node: bytes, blob: bytes) -> None:
    for suffix, data in ((".bin", blob), (".json", node)):
        path = folder / f"{name}{suffix}"
        path.write_bytes(data)
        path.chmod(0o644)


def write_config(folder: Path, cfg: dict[str, Any]) -> None:
    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "config.json").chmod(0o644)

