"""Inside the sandbox: the runner's channel and its defences against the code it hosts.

Imported by `mpkit.exercises._runner` before any student code, so everything here is bound to the
originals: `Channel` writes with the ``os.write`` and ``json.dumps`` of that moment; `guard` notes the
fork hooks (``os.register_at_fork``) the notebook registers, which would run, untraced, in every fork;
`restore_builtins` undoes what the notebook did to the builtins (a patched ``len`` would otherwise run
the student's code wherever the runner calls ``len``); `intruders` says whether the notebook's code is
already running in a fresh fork (a thread, a fork hook), in which case it must not get the inputs.
"""
from __future__ import annotations

import builtins
import json
import os
import resource
import sys
from typing import Any

_write, _read, _open, _close, _dumps = os.write, os.read, os.open, os.close, json.dumps
_BUILTINS = dict(vars(builtins))
_TRUSTED = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix,
                                                         os.path.join(os.path.dirname(__file__), ".."))})
_register_at_fork = os.register_at_fork
HOOKS: list[str] = []  # the notebook's own fork hooks, by name


class Channel:
    """The one way out: newline-terminated JSON messages, each optionally followed by raw bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, blobs: list[bytes] | None = None, **msg: Any) -> None:
        if blobs is not None:
            msg["blob"] = sum(map(len, blobs))
        data = (_dumps(msg, allow_nan=False, separators=(",", ":")) + "\n").encode()
        for chunk in [data, *(blobs or [])]:
            view = memoryview(chunk)
            while view:
                view = view[_write(self.fd, view):]


def set_limits(lim: dict[str, int]) -> None:
    """Address space, processes, file size, CPU seconds; no core files (soft = hard: no raising them back)."""
    for name, key in (("RLIMIT_AS", "memory"), ("RLIMIT_NPROC", "nproc"), ("RLIMIT_FSIZE", "fsize"),
                      ("RLIMIT_CPU", "cpu"), ("RLIMIT_CORE", "core")):
        if hasattr(resource, name) and key in lim:
            try:
                resource.setrlimit(getattr(resource, name), (lim[key], lim[key]))
            except (ValueError, OSError):
                pass  # e.g. a limit above the current hard limit: the lower one stays


def _register(**hooks: Any) -> None:
    """``os.register_at_fork`` as the notebook sees it: hooks defined outside Python's and mpkit's files are noted."""
    for fn in hooks.values():
        code = getattr(fn, "__code__", None)
        if not (code and os.path.realpath(code.co_filename).startswith(_TRUSTED)):
            HOOKS.append(str(getattr(fn, "__qualname__", "?"))[:80])
    _register_at_fork(**hooks)


def guard() -> None:
    """Install the fork-hook watch (call once, before the notebook runs)."""
    os.register_at_fork = _register


def restore_builtins() -> None:
    vars(builtins).update(_BUILTINS)


def slurp(path: str) -> bytes:
    """The bytes of ``path``, read with the functions of the runner's start."""
    fd, parts = _open(path, os.O_RDONLY), []
    try:
        while chunk := _read(fd, 2**20):
            parts.append(chunk)
    finally:
        _close(fd)
    return b"".join(parts)


def intruders() -> str:
    """``"thread"`` or ``"fork hook"`` if code of the notebook already runs in this (freshly forked)
    process, else ``""``. The thread count is the kernel's, not Python's."""
    if os.path.exists("/proc/self/status"):
        status = slurp("/proc/self/status")
        threads = next((int(line.split()[1]) for line in status.split(b"\n") if line.startswith(b"Threads:")), 1)
        if threads > 1:
            return "thread"
    return "fork hook" if HOOKS else ""
