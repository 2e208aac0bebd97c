"""Reports: the table, the JSON report with a class summary, Gradescope's ``results.json``.

Every string that comes from a submission (file names, exception messages, type names) goes through
`clean` first: lone surrogates, control characters and bidirectional overrides become visible
escapes, so no name can break a strict UTF-8 terminal or a JSON parser, or disguise itself. Files are
written with `write_atomic`: a reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpkit.exercises.judge import STATUSES

if TYPE_CHECKING:
    from mpkit.exercises.grading import Submission

_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def clean(text: Any, limit: int = 2000) -> str:
    """``text`` as printable, valid Unicode: at most ``limit`` characters, nothing hidden or unencodable."""
    s = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    s = _HIDDEN.sub(lambda m: f"\\u{ord(m[0]):04x}", s)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def display_names(subs: Sequence[Submission]) -> list[str]:
    """Paths relative to the folder they share, cleaned."""
    paths = [os.path.abspath(os.fsdecode(s.path)) for s in subs]
    common = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    return [clean(os.path.relpath(p, common), 200) for p in paths]


def summary(subs: Sequence[Submission]) -> dict[str, dict[str, Any]]:
    """Per chapter, per exercise: how many of the graded submissions passed, and the most common first
    feedback line of those that did not."""
    out: dict[str, dict[str, Any]] = {}
    for s in subs:
        for r in s.results if s.status == "graded" else []:
            e = out.setdefault(s.chapter, {}).setdefault(r.name, {"graded": 0, "passed": 0, "first": Counter()})
            e["graded"] += 1
            e["passed"] += r.status == "passed"
            if r.status != "passed" and r.feedback:
                e["first"][clean(f"{r.status} — {r.feedback[0]}", 300)] += 1
    for chapter in out.values():
        for e in chapter.values():
            first = e.pop("first")
            line, count = first.most_common(1)[0] if first else ("", 0)
            e |= {"pass_rate": round(e["passed"] / e["graded"], 3), "most_common_feedback": line,
                  "most_common_count": count}
    return out


def table(subs: Sequence[Submission], isolation: str = "") -> str:
    """Submission × exercise → points; under a row, the first feedback line of each exercise that lost
    points; then the class summary. The first line says how submissions were isolated."""
    lines = [f"isolation: {clean(isolation)}"] if isolation else []
    names = display_names(subs)
    width, header = max(map(len, names + ["submission"])), None
    for name, s in zip(names, subs):
        if s.results and [r.name for r in s.results] != header:
            header = [r.name for r in s.results]
            lines.append(f"{'submission':<{width}}  " + "  ".join(header) + "  total")
        points = "  ".join(f"{r.score:g}/{r.max_score:g}".ljust(len(r.name)) for r in s.results)
        status = f"  ✗ {s.status}: {clean(s.error, 300)}" if s.error or s.status != "graded" else ""
        lines.append(f"{name:<{width}}  {points}  {s.score:g}/{s.max_score:g}{status}")
        lines += [f"    {r.name}: {r.status} — {clean(r.feedback[0], 400)}" for r in s.results
                  if r.status != "passed" and r.feedback]
    for chapter, exercises in summary(subs).items():
        lines.append(f"class summary{f' ({chapter})' if chapter else ''}:")
        w = max(map(len, exercises))
        for name, e in exercises.items():
            common = f"  most common: {e['most_common_feedback'][:160]} ({e['most_common_count']}×)" \
                if e["most_common_count"] else ""
            lines.append(f"  {name:<{w}}  {e['passed']}/{e['graded']} passed ({100 * e['pass_rate']:.0f}%){common}")
    return "\n".join(lines)


def gradescope(sub: Submission) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission; each test keeps our status in ``extra_data``."""
    tests = [{"name": r.name, "score": r.score, "max_score": r.max_score,
              "status": "passed" if r.status == "passed" else "failed",
              "output": clean("\n".join(r.feedback) or "all cases correct", 8000),
              "extra_data": {"status": r.status, **({"graded_as": r.graded_as} if r.graded_as else {})}}
             for r in sub.results]
    notes = ([f"{sub.status}: {sub.error}"] if sub.error else []) + sub.notes
    return {"score": sub.score, "execution_time": round(sub.seconds, 2), "output": clean("\n".join(notes), 8000),
            "tests": tests}


def report(subs: Sequence[Submission], seconds: float, isolation: str, detail: str, *, done: bool,
           peak_mb: float = 0.0) -> dict[str, Any]:
    """``--json``: per submission its `gradescope` object plus path, status, chapter, error, flags; the class
    summary; totals. ``status`` is ``running`` until the run is complete."""
    names = display_names(subs)
    rows = [{"path": name, "status": s.status, "chapter": s.chapter, "max_score": s.max_score,
             "error": clean(s.error, 1000), "flags": [clean(f, 300) for f in s.flags], **gradescope(s)}
            for name, s in zip(names, subs)]
    return {"isolation": isolation, "isolation_detail": clean(detail), "status": "complete" if done else "running",
            "submissions": rows, "summary": summary(subs),
            "totals": {"submissions": len(subs), "graded": sum(s.status == "graded" for s in subs),
                       "invalid": sum(s.status == "invalid" for s in subs),
                       "failed": sum(s.status == "failed" for s in subs),
                       "pending": sum(s.status == "pending" for s in subs),
                       "score": sum(s.score for s in subs), "max_score": sum(s.max_score for s in subs),
                       "statuses": {st: sum(r.status == st for s in subs for r in s.results) for st in STATUSES},
                       "seconds": round(seconds, 2), "grader_peak_mb": round(peak_mb, 1)}}


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
