"""One submission from start to finish: the phases of its sandbox, re-runs, and the one time budget.

Phase 1, the notebook: messages ``cell``/``cell_end`` per cell; a cell that kills the runner, or that
an interrupt cannot stop, is skipped and the notebook runs again in a new sandbox (at most
``restarts`` times). Phase 2, "cells_done": the notebook's processes stopped, "fork", "ready", the
processes stopped again, the secret cases written, "go". Phase 3, the
calls: ``ex``, ``case_start``, ``case`` (+ bytes), ``ex_end`` per exercise, in order. Whatever runs
out of time is stopped from outside as well, so no sandbox outlives its deadline by more than `GRACE`.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpkit.exercises import wire
from mpkit.exercises.isolation import Isolation
from mpkit.exercises.session import GRACE, STARTUP, ExerciseRun, Limits, Protocol, Run, Sandbox, label, write_config


@dataclass
class CaseRecord:
    """One call as the sandbox reported it; ``out``/``after`` decoded (``problem``: why they could not be)."""

    raised: str = ""
    type: str = ""
    aliases: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    tampered: bool = False
    out: Any = None
    after: Any = None
    problem: str = ""


def _strings(v: Any, n: int, size: int) -> list[str]:
    return [str(x)[:size] for x in v[:n] if isinstance(x, str)] if isinstance(v, list) else []


def record(msg: dict[str, Any], blob: bytes, bound: int) -> CaseRecord:
    """A `CaseRecord` from a ``case`` message, every field checked; the values decoded within ``bound`` bytes."""
    raised = msg.get("raised")
    rec = CaseRecord(": ".join(_strings(raised, 2, 300)) if isinstance(raised, list) else "",
                     str(msg.get("type", ""))[:80], _strings(msg.get("aliases"), 8, 160),
                     _strings(msg.get("hits"), 8, 200), msg.get("tampered") is True)
    try:
        rec.out = wire.decode(msg.get("out"), blob, bound)
        rec.after = wire.decode(msg.get("after"), blob, bound)
    except wire.WireError as err:
        rec.problem = str(err)
    return rec


class Submission:
    """The state of one submission across its sandbox starts."""

    def __init__(self, iso: Isolation, work: Path, cells: Sequence[tuple[int, str]], cfg: dict[str, Any],
                 limits: Limits, on_case: Callable[[str, int, CaseRecord], Any],
                 before_go: Callable[[], Awaitable[dict[str, tuple[bytes, bytes]]]]) -> None:
        self.iso, self.work, self.cells, self.cfg, self.limits = iso, work, dict(cells), cfg, limits
        self.on_case, self.before_go = on_case, before_go
        self.run, self.skip, self.todo = Run(), set(), list(cfg["exercises"])
        self.deadline = time.monotonic() + limits.total

    async def notebook(self, box: Sandbox) -> str:
        """Phase 1: ``cells_done``, ``restart`` (a cell was added to the skip list), ``budget`` or ``broken``."""
        current, since, seen = None, 0.0, False
        self.run.errors.clear()
        while True:
            backstop = since + self.limits.cell + GRACE if current is not None else time.monotonic() + STARTUP
            msg = await box.message(min(self.deadline, backstop))
            if msg is None:
                if time.monotonic() >= self.deadline:
                    return "budget"
                if current is None:
                    self.run.broken = "" if seen else "the sandbox stopped before the notebook started"
                    return "broken" if not seen else "restart_none"
                how = "hung the notebook (an interrupt could not stop it)" if time.monotonic() >= backstop \
                    else "killed the notebook"
                self.run.notes.append(f"{label(self.cells.get(current, ''), current)} {how}; "
                                      "the notebook was run again without it")
                self.skip.add(current)
                return "restart"
            seen, kind, i = True, msg["t"], msg.get("i")
            if kind in ("cell", "cell_end", "late") and (type(i) is not int or i not in self.cells):
                raise Protocol("a message about a cell that does not exist")
            if kind == "cell":
                current, since = i, time.monotonic()
            elif kind == "cell_end":
                current, error = None, str(msg.get("error", ""))[:400]
                if msg.get("timeout") is True:
                    self.run.errors.append(f"{label(self.cells[i], i)} did not finish within "
                                           f"{self.limits.cell:g} s and was interrupted")
                elif error:
                    self.run.errors.append(f"{label(self.cells[i], i)} raised {error}")
            elif kind == "late":
                self.run.notes.append(f"your notebook ran longer than {self.limits.notebook:g} s: "
                                      f"{label(self.cells[i], i)} and the cells after it were not run")
            elif kind == "fatal":
                self.run.broken = str(msg.get("why", ""))[:300]
                return "broken"
            elif kind == "cells_done":
                return "cells_done"

    async def calls(self, box: Sandbox) -> str:
        """Phase 3: ``done``, ``restart`` (an exercise was lost) or ``budget``."""
        while self.todo:
            name = self.todo[0]
            msg = await box.message(min(self.deadline, time.monotonic() + self.limits.call + GRACE))
            if msg is None:
                return "budget" if time.monotonic() >= self.deadline else "restart_none"
            if msg["t"] != "ex" or msg.get("name") != name:
                raise Protocol(f"expected the start of `{name}`")
            ex = self.run.exercises[name] = ExerciseRun(defined=msg.get("defined") is True)
            if ex.defined and (kind := await self.exercise(box, name, ex)) != "done":
                self.todo.pop(0)
                return kind
            ex.kind = "done" if not ex.defined else ex.kind
            self.todo.pop(0)
        return "done"

    async def exercise(self, box: Sandbox, name: str, ex: ExerciseRun) -> str:
        """The messages of one exercise, until its ``ex_end``."""
        until = time.monotonic() + self.limits.call + GRACE
        while True:
            msg = await box.message(min(self.deadline, until))
            if msg is None:
                ex.kind = "budget" if time.monotonic() >= self.deadline else "lost"
                return "budget" if ex.kind == "budget" else "restart"
            kind = msg["t"]
            if kind == "ex_end" and msg.get("name") == name and msg.get("kind") in ("done", "timeout", "died"):
                ex.kind = msg["kind"]
                return "done"
            if kind not in ("case_start", "case") or msg.get("ex") != name or msg.get("i") != len(ex.cases):
                raise Protocol(f"an unexpected message while `{name}` ran")
            if kind == "case_start":
                ex.started = len(ex.cases) + 1
                continue
            n = msg.get("blob")
            if type(n) is not int or not 0 <= n <= 2 * self.limits.result_bytes:
                ex.kind, ex.started = "too_large", len(ex.cases) + 1
                return "restart"  # the bytes are not read: this sandbox is stopped
            blob = await box.blob(n, min(self.deadline, until))
            rec = await asyncio.to_thread(record, msg, blob, self.limits.result_bytes)
            ex.cases.append(await asyncio.to_thread(self.on_case, name, len(ex.cases), rec))

    async def attempt(self) -> str:
        """One sandbox start: the notebook, then (after "ready") the calls of the exercises still to do."""
        self.cfg["skip"], self.cfg["exercises"] = sorted(self.skip), list(self.todo)
        await asyncio.to_thread(write_config, self.work / "in", self.cfg)
        box = Sandbox(self.iso, self.work, self.limits)
        try:
            await box.start()
            if (phase := await self.notebook(box)) != "cells_done":
                return phase
            await box.fork()
            msg = await box.message(min(self.deadline, time.monotonic() + 6 * GRACE))
            if msg is None or msg["t"] != "ready":
                self.run.notes.append("your notebook's processes or threads kept the grader from calling "
                                      "your functions")
                return "budget" if time.monotonic() >= self.deadline else "restart_none"
            files = await self.before_go()
            if killed := await box.go({n: files[n] for n in self.todo}):
                self.run.notes.append(f"your notebook left {killed} process{'es' * (killed > 1)} running; "
                                      f"{'they were' if killed > 1 else 'it was'} stopped before the grader's calls")
            return await self.calls(box)
        except Protocol as err:
            self.run.invalid = f"the sandbox's messages broke the grader's protocol ({err})"
            return "invalid"
        finally:
            await box.stop()

    async def grade(self) -> Run:
        """Every exercise's `ExerciseRun`, within the budget."""
        starts = 0
        while self.todo and starts <= self.limits.restarts and time.monotonic() < self.deadline:
            starts += 1
            outcome = await self.attempt()
            if outcome in ("broken", "invalid", "budget"):
                break
        out_of_time = time.monotonic() >= self.deadline
        for name in self.todo:
            ex = self.run.exercises.setdefault(name, ExerciseRun(kind="budget" if out_of_time else "lost"))
            ex.kind = "invalid" if self.run.invalid else ex.kind
        if self.todo and out_of_time:
            self.run.notes.append(f"the submission's time budget ({self.limits.total:g} s) ran out")
        elif self.todo and not self.run.broken and not self.run.invalid:
            self.run.notes.append(f"your notebook killed or hung the sandbox {starts} times; the grader gave up")
        return self.run
