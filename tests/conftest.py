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


_KNOWN = None


def _known_defects() -> dict[str, str]:
    """Test name (with parameters) -> what is wrong, from tests/book_known_defects.yml."""
    global _KNOWN
    if _KNOWN is None:
        import pathlib

        import yaml
        data = yaml.safe_load((pathlib.Path(__file__).parent / "book_known_defects.yml").read_text())
        _KNOWN = data.get("checks") or {}
    return _KNOWN


import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A listed site check that fails with an AssertionError is reported as XFAIL, with the ledger's reason."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or not item.nodeid.startswith("tests/test_book.py::"):
        return
    reason = _known_defects().get(item.name)
    if reason and call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        report.outcome = "skipped"
        first = str(call.excinfo.value).strip().splitlines()[0][:200] if str(call.excinfo.value).strip() else ""
        report.wasxfail = f"known defect (tests/book_known_defects.yml): {reason} -- now: {first}"
