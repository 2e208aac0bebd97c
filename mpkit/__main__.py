"""Command line: ``python -m mpkit exercises``, ``python -m mpkit grade``, ``python -m mpkit gradescope``
(see `mpkit.exercises.cli` and the book's grading page)."""
from __future__ import annotations

import sys

from mpkit.exercises.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
