"""Command line: ``python -m mpkit exercises [--check] [SOLUTIONS] [EXERCISES]`` and
``python -m mpkit grade PATH [PATH ...] [--json REPORT] [--gradescope RESULTS] [--jobs N]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpkit import exercises

if TYPE_CHECKING:
    from mpkit.grading import Submission


def _exercises(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.solutions.is_dir():
        parser.error(f"{args.solutions} is not a folder of solution notebooks")
    changed = exercises.generate(args.solutions, args.exercises, check_only=args.check)
    for path in changed:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    if args.check and changed:
        print("exercises are out of date: run `python -m mpkit exercises`", file=sys.stderr)
        return 1
    if not changed:
        print(f"{args.exercises}/ is up to date with {args.solutions}/")
    return 0


def table(subs: Sequence[Submission]) -> str:
    """Submission × exercise → points; under a row, the first feedback line of each exercise that lost points."""
    common = os.path.commonpath([str(s.path.resolve().parent) for s in subs]) if subs else ""
    names = [os.path.relpath(s.path.resolve(), common) for s in subs]
    width, lines, header = max(map(len, names + ["submission"])), [], None
    for name, s in zip(names, subs):
        if s.results and [r.name for r in s.results] != header:
            header = [r.name for r in s.results]
            lines.append(f"{'submission':<{width}}  " + "  ".join(header) + "  total")
        points = "  ".join(f"{r.score:g}/{r.max_score:g}".ljust(len(r.name)) for r in s.results)
        lines.append(f"{name:<{width}}  {points}  {s.score:g}/{s.max_score:g}" + (f"  ✗ {s.error}" if s.error else ""))
        lines += [f"    {r.name}: {r.status} — {r.feedback[0]}" for r in s.results if r.status != "passed"]
    return "\n".join(lines)


def gradescope(sub: Submission) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission; each test keeps our status in ``extra_data``."""
    tests = [{"name": r.name, "score": r.score, "max_score": r.max_score,
              "status": "passed" if r.status == "passed" else "failed",
              "output": "\n".join(r.feedback) or "all cases correct", "extra_data": {"status": r.status}}
             for r in sub.results]
    return {"score": sub.score, "execution_time": round(sub.seconds, 2),
            "output": "\n".join(([sub.error] if sub.error else []) + sub.notes), "tests": tests}


def report(subs: Sequence[Submission], seconds: float) -> dict[str, Any]:
    """``--json``: per submission its `gradescope` object plus ``path``, ``max_score`` and ``error``; totals."""
    from mpkit.grading import STATUSES

    return {"submissions": [{"path": str(s.path), "max_score": s.max_score, "error": s.error, **gradescope(s)}
                            for s in subs],
            "totals": {"submissions": len(subs), "not_graded": sum(bool(s.error) for s in subs),
                       "score": sum(s.score for s in subs), "max_score": sum(s.max_score for s in subs),
                       "statuses": {st: sum(r.status == st for s in subs for r in s.results) for st in STATUSES},
                       "seconds": round(seconds, 2)}}


def _grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mpkit import grading  # imported here: `exercises` needs no kernel machinery

    try:
        files = grading.collect(args.paths)
    except FileNotFoundError as err:
        parser.error(str(err))
    here = Path(grading.__file__).resolve().parents[1] / "solutions"  # the repository this mpkit lives in
    solutions = args.solutions or (here if here.is_dir() else Path("solutions"))
    if not files:
        parser.error(f"no notebooks (*.ipynb) in {' '.join(args.paths)}")
    if not solutions.is_dir():
        parser.error(f"no solutions folder at {solutions}: pass --solutions DIR (the instructors' notebooks)")
    if args.gradescope and len(files) != 1:
        parser.error(f"--gradescope writes one submission's results.json; {len(files)} notebooks were given")
    for out in filter(None, [args.json, args.gradescope]):
        if not out.parent.is_dir():
            parser.error(f"cannot write {out}: {out.parent} is not a folder")
    limits = grading.Limits(cell=args.cell_timeout, notebook=args.notebook_timeout, call=args.timeout)
    start = time.monotonic()
    subs = grading.grade(files, solutions=solutions, jobs=args.jobs, limits=limits)
    seconds = time.monotonic() - start
    print(table(subs))
    print(f"graded {len(subs)} notebooks in {seconds:.1f} s ({60 * len(subs) / seconds:.1f} per minute)")
    if args.json:
        args.json.write_text(json.dumps(report(subs, seconds), indent=1))
    if args.gradescope:
        args.gradescope.write_text(json.dumps(gradescope(subs[0]), indent=1))
    failed = [s for s in subs if s.internal]
    for s in failed:
        print(f"{s.path}: {s.error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("exercises", help="generate exercise notebooks from solution notebooks")
    gen.add_argument("solutions", nargs="?", default="solutions", type=Path)
    gen.add_argument("exercises", nargs="?", default="exercises", type=Path)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if any exercise is stale")
    gr = sub.add_parser("grade", help="score exercise notebooks (files or folders) in fresh kernels")
    gr.add_argument("paths", nargs="+", metavar="PATH", help="a submitted notebook or a folder of them")
    gr.add_argument("--json", type=Path, metavar="REPORT", help="write the full report as JSON")
    gr.add_argument("--gradescope", type=Path, metavar="RESULTS", help="write Gradescope's results.json (one notebook)")
    gr.add_argument("--jobs", type=int, default=None, help="kernels at a time (default: min(4, CPUs))")
    gr.add_argument("--solutions", type=Path, default=None, help="the instructors' solution notebooks")
    gr.add_argument("--timeout", type=float, default=20.0, help="seconds for all calls of one exercise")
    gr.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per notebook cell")
    gr.add_argument("--notebook-timeout", type=float, default=300.0, help="seconds per run of the notebook")
    args = parser.parse_args(argv)
    return (_exercises if args.command == "exercises" else _grade)(args, parser)


if __name__ == "__main__":
    sys.exit(main())
