"""Command line: ``python -m mpkit exercises [--check] [SOLUTIONS] [EXERCISES]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mpkit import exercises


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("exercises", help="generate exercise notebooks from solution notebooks")
    gen.add_argument("solutions", nargs="?", default="solutions", type=Path)
    gen.add_argument("exercises", nargs="?", default="exercises", type=Path)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if any exercise is stale")
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
