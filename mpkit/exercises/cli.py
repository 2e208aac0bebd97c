"""Command line of the exercises wing: ``exercises`` (generate), ``grade``, ``gradescope`` (the bundle).

Exit status of ``grade``: 0 when every notebook was graded or refused with a reason (``invalid``),
whatever the scores; 1 when the grader itself failed on a notebook (the report says which); 2 when
nothing could be graded as asked (a path that does not exist, no chapter, a spec that cannot be
loaded, several notebooks without a sandbox). The reports exist from the start of the run on.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

from mpkit.exercises import authoring, notebook

EXIT_OK, EXIT_GRADER_FAILED, EXIT_USAGE = 0, 1, 2
REPO = Path(__file__).resolve().parents[2]


def _exercises(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.solutions.is_dir():
        parser.error(f"{args.solutions} is not a folder of solution notebooks")
    changed = authoring.generate(args.solutions, args.exercises, check_only=args.check)
    for path in changed:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    if args.check and changed:
        print("exercises are out of date: run `python -m mpkit exercises`", file=sys.stderr)
        return 1
    if not changed:
        print(f"{args.exercises}/ is up to date with {args.solutions}/")
    return 0


def default_solutions() -> Path | None:
    """The spec notebooks of the repository this mpkit lives in: ``solutions/``, else ``exercises/``."""
    return next((REPO / d for d in ("solutions", "exercises") if (REPO / d).is_dir()), None)


def infer_chapter(found: list[notebook.Found]) -> str | None:
    """The chapter of a single notebook (its metadata, else its name); None if it cannot be read."""
    try:
        return notebook.read(found[0]).chapter()
    except notebook.Invalid:
        return None


def _pick_for_gradescope(found: list[notebook.Found], chapter: str) -> tuple[list[notebook.Found], str]:
    """One student's upload may hold several notebooks: the one of this chapter, or a reason for none."""
    if len(found) == 1:
        return found, ""
    mine = [f for f in found if infer_chapter([f]) == chapter]
    if len(mine) == 1:
        return mine, ""
    names = ", ".join(report_mod().clean(f.path.name, 80) for f in found) or "none"
    return [], f"upload exactly one exercise notebook of {chapter}; found: {names}"


def report_mod() -> Any:
    from mpkit.exercises import report

    return report


def _write_reports(args: argparse.Namespace, subs: list, iso: Any, start: float, done: bool) -> None:
    report = report_mod()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        report.write_atomic(args.json, report.report(subs, time.monotonic() - start, iso.kind, iso.detail,
                                                     done=done, peak_mb=peak))
    if args.gradescope:
        result = report.gradescope(subs[0]) if subs else {"score": 0.0, "execution_time": 0.0, "tests": [],
                                                            "output": args.gradescope_reason}
        if not done:
            result = {**result, "output": "grading did not finish"}
        report.write_atomic(args.gradescope, result)


def _setup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list[notebook.Found], str, Path]:
    try:
        found = notebook.collect(args.paths)
    except FileNotFoundError as err:
        parser.error(str(err))
    if not found:
        parser.error(f"no notebooks (*.ipynb) in {' '.join(args.paths)}")
    solutions = args.solutions or default_solutions()
    if solutions is None or not solutions.is_dir():
        parser.error(f"no spec notebooks at {solutions}: pass --solutions DIR (the instructors' notebooks)")
    chapter = args.chapter or (infer_chapter(found) if len(found) == 1 else None)
    if chapter is None:
        parser.error(f"{len(found)} notebooks: pass --chapter NAME, the assignment they are graded as "
                     f"(one of: {', '.join(sorted(p.stem for p in solutions.glob('*.ipynb')))})")
    for out in filter(None, [args.json, args.gradescope]):
        if not out.parent.is_dir():
            parser.error(f"cannot write {out}: {out.parent} is not a folder")
    return found, chapter, solutions


def _grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mpkit.exercises import grading  # imported here: `exercises` needs no sandbox machinery

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # a terminal that cannot show "✗" still gets the table
    found, chapter, solutions = _setup(args, parser)
    args.gradescope_reason = ""
    if args.gradescope:  # one student's upload: the notebook of this chapter among what was uploaded
        found, args.gradescope_reason = _pick_for_gradescope(found, chapter)
        if args.gradescope_reason:
            print(args.gradescope_reason, file=sys.stderr)
    limits = grading.Limits(cell=args.cell_timeout, notebook=args.notebook_timeout, call=args.timeout,
                            total=args.budget, memory=int(args.memory * 2**30))
    try:
        iso = grading.detect(args.isolation)
    except RuntimeError as err:
        parser.error(str(err))
    start, subs = time.monotonic(), [grading.Submission(f.path) for f in found]
    _write_reports(args, subs, iso, start, done=False)  # the reports exist before any notebook runs
    try:
        subs = grading.grade(found, solutions=solutions, chapter=chapter, jobs=args.jobs,
                             limits=limits, isolation=iso, allow_unisolated=args.allow_unisolated,
                             on_done=lambda s: _write_reports(args, s, iso, start, done=False)) if found else []
    except (grading.SpecError, grading.Refused) as err:
        print(f"python -m mpkit grade: {err}", file=sys.stderr)
        for out in filter(None, [args.json, args.gradescope]):  # the reports say why nothing was graded
            report_mod().write_atomic(out, {"status": "not graded", "error": report_mod().clean(err), "score": 0.0,
                                            "output": report_mod().clean(err), "tests": [], "submissions": []})
        return EXIT_USAGE
    seconds = time.monotonic() - start
    _write_reports(args, subs, iso, start, done=True)
    print(report_mod().table(subs, iso.detail))
    print(f"graded {len(subs)} notebooks in {seconds:.1f} s ({60 * len(subs) / max(seconds, 1e-9):.1f} per minute)")
    failed = [s for s in subs if s.internal]
    for s in failed:
        print(f"{report_mod().clean(s.path)}: {report_mod().clean(s.error)}", file=sys.stderr)
    return EXIT_GRADER_FAILED if failed else EXIT_OK


def _bundle(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mpkit.exercises import bundle

    solutions = args.solutions or default_solutions()
    try:
        out = bundle.write(args.chapter, solutions, args.out, budget=args.budget)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {out} and {out.with_suffix('.zip')}: upload the zip as the autograder of {args.chapter}")
    return 0


def add_grade_parser(sub: Any) -> None:
    gr = sub.add_parser("grade", help="score exercise notebooks (files or folders), each in its own sandbox")
    gr.add_argument("paths", nargs="+", metavar="PATH", help="a submitted notebook or a folder of them")
    gr.add_argument("--chapter", help="the assignment, e.g. 01_neural_networks (needed for several notebooks)")
    gr.add_argument("--solutions", type=Path, default=None, help="the spec notebooks (solutions/ or exercises/)")
    gr.add_argument("--json", type=Path, metavar="REPORT", help="write the full report as JSON")
    gr.add_argument("--gradescope", type=Path, metavar="RESULTS",
                    help="write Gradescope's results.json for one student's upload (PATH: their notebook or folder)")
    gr.add_argument("--jobs", type=int, default=None, help="sandboxes at a time (default: min(4, CPUs))")
    gr.add_argument("--timeout", type=float, default=20.0, help="seconds for all calls of one exercise")
    gr.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per notebook cell")
    gr.add_argument("--notebook-timeout", type=float, default=300.0, help="seconds per run of the notebook")
    gr.add_argument("--budget", type=float, default=600.0, help="seconds for everything of one submission")
    gr.add_argument("--memory", type=float, default=4.0, help="GiB of memory per sandbox")
    gr.add_argument("--isolation", choices=("auto", "bwrap", "none"), default="auto",
                    help="auto: a bubblewrap sandbox when it works here, else none")
    gr.add_argument("--allow-unisolated", action="store_true",
                    help="grade several notebooks without a sandbox (only if every notebook is trusted)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpkit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("exercises", help="generate exercise notebooks from solution notebooks")
    gen.add_argument("solutions", nargs="?", default="solutions", type=Path)
    gen.add_argument("exercises", nargs="?", default="exercises", type=Path)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if any exercise is stale")
    add_grade_parser(sub)
    gs = sub.add_parser("gradescope", help="write the Gradescope autograder bundle of one chapter")
    gs.add_argument("chapter", help="the assignment, e.g. 01_neural_networks")
    gs.add_argument("--out", type=Path, required=True, help="the folder to write (a .zip of it is written beside)")
    gs.add_argument("--solutions", type=Path, default=None, help="the spec notebooks (solutions/ or exercises/)")
    gs.add_argument("--budget", type=float, default=600.0, help="seconds for everything of one submission")
    args = parser.parse_args(argv)
    return {"exercises": _exercises, "grade": _grade, "gradescope": _bundle}[args.command](args, parser)
