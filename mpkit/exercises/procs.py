"""The processes of one sandbox, as the host's ``/proc`` shows them (which the sandbox cannot forge).

With bubblewrap the tree is: ``bwrap`` (the grader's child) → ``bwrap`` (PID 1 inside) → the runner,
which after the notebook has become a waiter → the runner's fork that holds the notebook's state.
Processes the notebook left behind (a server, a ``setsid`` daemon reparented to PID 1 inside) are
everything else in that tree: `stop_strays` kills them before the grader's cases are written.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

WAITER_MARK = b"ChildProcessError"  # in the waiter's command line (see `_runner.WAITER`)


def table() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, start time in clock ticks)} of every process on the host."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return out


def descendants(top: int, procs: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [top]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _chain(top: int, sandboxed: bool, forked: bool, procs: dict[int, tuple[int, int]]) -> tuple[int, list[int]]:
    """The runner and the processes to keep: the chain down to the runner and, once it has forked,
    the notebook's fork (the runner's youngest child)."""
    def kids(pid: int) -> list[int]:
        return sorted((p for p, (pp, _) in procs.items() if pp == pid), key=lambda p: (procs[p][1], p))
    chain = [top]
    for _ in range(2 if sandboxed else 0):  # bwrap, then bwrap's PID 1: their oldest child
        chain.append(kids(chain[-1])[0])
    return chain[-1], chain + (kids(chain[-1])[-1:] if forked else [])


def _is_waiter(pid: int) -> bool:
    try:
        return WAITER_MARK in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_strays(top: int, sandboxed: bool, forked: bool, killed: set[int], settle: float = 5.0) -> int:
    """Kill every process of the sandbox except the runner's chain (their pids are added to ``killed``);
    the number of processes killed so far.

    After the fork (``forked``) it first waits (at most ``settle`` seconds) until the runner has become
    the waiter, so that no thread of the notebook is left that could start another process.
    """
    if not os.path.isdir("/proc/self"):
        return 0  # no /proc (macOS): nothing to inspect; see the grading page
    deadline = time.monotonic() + settle
    for _ in range(50):
        procs = table()
        try:
            runner, keep = _chain(top, sandboxed, forked, procs)
        except IndexError:
            return len(killed)  # the sandbox is gone already
        if forked and not _is_waiter(runner) and time.monotonic() < deadline:
            time.sleep(0.01)
            continue
        strays = [p for p in descendants(top, procs) if p not in keep and p not in killed]
        if not strays:
            return len(killed)
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.01)
    return len(killed)


def kill_tree(top: int) -> None:
    """SIGKILL ``top`` and everything below it (with bubblewrap, killing PID 1 inside ends all of it)."""
    procs = table() if os.path.isdir("/proc/self") else {}
    for pid in [top, *descendants(top, procs)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(top, signal.SIGKILL)  # without /proc: the process group the runner started in
    except OSError:
        pass
