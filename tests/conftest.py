"""Shared test settings, and a per-notebook timing table at the end of the run."""
from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # unit tests draw figures without a display

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    # nbval reports each cell as one item "path.ipynb::Cell N"; sum the cells of each notebook.
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb") and report.when == "call":
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook execution time (sum of cells)")
    for path, secs in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{secs:7.1f} s  {path}")
