"""The grader against a class of students who attack it (and a few who do not), each in a sandbox.

One folder of chapter-1 submissions is graded by one run of the command line, as an instructor runs it
(``--chapter 01_neural_networks --jobs 2``, short time limits, strict UTF-8 stdout); every test reads
its own submission's row of that run's JSON report. Most submissions are the exercise notebook with the
solution's answers except for one adversarial answer or one added top-level cell. The attack classes are
those of issue 9; for each, the test asserts the exact outcome: what the attacker scores, that honest
classmates score what they earned, that the reports are complete and do not change after the grader
has exited, that no file outside the report changed, and the wall time and the grader's peak memory.
The other chapters' solutions and blank exercises are graded by one call of the Python API.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from mpkit import exercises
from mpkit.exercises import grading

from grading_cases import EXERCISES, SUBMISSIONS

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "submissions"
CH1 = "01_neural_networks.ipynb"
LIMITS = ["--timeout", "4", "--cell-timeout", "20", "--notebook-timeout", "50", "--budget", "60", "--memory", "2"]
BUDGET, GRACE = 60, 5
WALL_BOUND = 900  # seconds for the whole class (28 notebooks, 23 of them run, two at a time, under load)
PEAK_BOUND_MB = 1200  # the grader's own resident memory (torch alone is ~300 MB)
MARKER = "mpkit-attack-daemon"


def _answers(nb):
    """{function name: source} of the cells that define a top-level function."""
    return {m[1]: c.source for c in nb.cells if c.cell_type == "code"
            for m in [re.search(r"^def (\w+)\(", c.source, re.M)] if m}


def _solved(chapter=CH1, answers=None, cells=None, solved=True):
    """The exercise notebook of ``chapter`` with the solution's answers (``solved``), except those in
    ``answers`` {exercise: code}; ``cells`` {exercise: [source]} inserted after that exercise's answer."""
    nb = nbformat.read(ROOT / "exercises" / chapter, as_version=4)
    solution = _answers(nbformat.read(ROOT / "solutions" / chapter, as_version=4))
    answers, cells = answers or {}, cells or {}
    for cell in list(nb.cells):
        m = re.search(r"^def (\w+)\(", cell.source, re.M) if cell.cell_type == "code" else None
        if m and m[1] in solution:
            cell.source = answers.get(m[1], solution[m[1]] if solved else cell.source)
            for k, source in enumerate(cells.get(m[1], [])):
                nb.cells.insert(nb.cells.index(cell) + 1 + k, nbformat.v4.new_code_cell(source))
    return nb


def _snapshot(*folders):
    """{path: sha256} of every file under ``folders`` (links not followed)."""
    out = {}
    for folder in folders:
        for top, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                p = os.path.join(top, f)
                if not os.path.islink(p):
                    out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def _site_listing():
    import sysconfig
    site = Path(sysconfig.get_paths()["purelib"])
    return site, {str(p) for p in site.iterdir()}


def _build(folder, report):
    """Write every submission of the class into ``folder``: {key: path}."""
    paths, fill = {}, {"@CLASS@": str(folder), "@REPORT@": str(report), "@ROOT@": str(ROOT), "@MARKER@": MARKER}

    def filled(text):
        for key, value in fill.items():
            text = text.replace(key, value)
        return text
    for name, s in SUBMISSIONS.items():
        nb = _solved(CH1, {k: filled(v) for k, v in s["answers"].items()},
                     {k: [filled(c) for c in v] for k, v in s["cells"].items()}, s["solved"])
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(nb, paths[name])
    paths["classmate_a"] = folder / "classmate_a" / CH1
    paths["classmate_a"].parent.mkdir()
    nbformat.write(_solved(), paths["classmate_a"])
    paths["classmate_b"] = folder / os.fsdecode(b"caf\xe9_\xff.ipynb")  # not UTF-8: the reports must cope
    nbformat.write(_solved(), paths["classmate_b"])
    paths["classmate_wrong"] = folder / "classmate_wrong.ipynb"
    nbformat.write(_solved(CH1, {"perceptron_epoch": "def perceptron_epoch(X, y, w, b, lr=1.0):\n    return w, b, 0"}),
                   paths["classmate_wrong"])
    _special(folder, paths)
    return paths


def _special(folder, paths):
    """The submissions that are not made by replacing an answer: malformed files, links, other chapters."""
    for f in sorted(HERE.glob("*.ipynb")):
        paths[f.stem] = folder / f.name
        paths[f.stem].write_bytes(f.read_bytes())
    paths["other_chapter"] = folder / "other_chapter.ipynb"  # a solved chapter-3 exercise notebook
    nbformat.write(_solved("03_unet.ipynb"), paths["other_chapter"])
    (folder / "linked").mkdir()
    paths["link_to_solutions"] = folder / "linked" / CH1
    paths["link_to_solutions"].symlink_to(ROOT / "solutions" / CH1)
    (folder / "linked_folder").symlink_to(ROOT / "solutions", target_is_directory=True)
    nb = _solved()
    for cell in nb.cells:
        cell.metadata["tags"] = None
    paths["tags_null"] = folder / "tags_null.ipynb"
    paths["tags_null"].write_text(json.dumps(nb))
    nb = json.loads(nbformat.writes(_solved()))
    nb["cells"][2]["source"] = 42
    paths["integer_source"] = folder / "integer_source.ipynb"
    paths["integer_source"].write_text(json.dumps(nb))
    (folder / "solution").mkdir()
    paths["solution"] = folder / "solution" / CH1  # the instructors' notebook itself, known-wrong cell and all
    paths["solution"].write_bytes((ROOT / "solutions" / CH1).read_bytes())
    paths["exercise"] = folder / "exercise.ipynb"
    nbformat.write(exercises.make_exercise(nbformat.read(ROOT / "solutions" / CH1, as_version=4),
                                           f"solutions/{CH1}"), paths["exercise"])


def _daemons():
    """Host processes whose command line carries the attackers' marker."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(int(pid))
        except OSError:
            pass
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The class graded by one command: its report, rows by submission, and what was measured around it."""
    from mpkit.exercises.report import clean

    tmp = tmp_path_factory.mktemp("grading")
    folder, report = tmp / "class", tmp / "out" / "report.json"
    folder.mkdir()
    report.parent.mkdir()
    paths = _build(folder, report)
    site, site_before = _site_listing()
    guarded = [ROOT / "solutions", ROOT / "exercises", ROOT / "mpkit", folder]
    before, free_before = _snapshot(*guarded), os.statvfs(tmp).f_bavail * os.statvfs(tmp).f_frsize
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mpkit", "grade", str(folder), "--chapter", "01_neural_networks",
                           "--json", str(report), "--jobs", "2", *LIMITS], env=env, capture_output=True,
                          timeout=WALL_BOUND + 300, check=False)
    wall = time.monotonic() - start
    first = report.read_bytes()
    time.sleep(20)  # the attackers' daemons would act now, after the grader has exited
    data = json.loads(first)
    rows = {r["path"]: r for r in data["submissions"]}
    keys = {k: clean(os.path.relpath(p, folder), 200) for k, p in paths.items()}
    return {"data": data, "rows": {k: rows.get(v) for k, v in keys.items()}, "wall": wall, "done": done,
            "report": report, "first": first, "after": report.read_bytes(), "before": before,
            "now": _snapshot(*guarded), "site": (site_before, _site_listing()[1]), "daemons": _daemons(),
            "free": (free_before, os.statvfs(tmp).f_bavail * os.statvfs(tmp).f_frsize), "folder": folder}


def _statuses(row):
    return {t["name"]: (t["extra_data"]["status"], t["score"]) for t in row["tests"]}


def _text(row, target=None):
    """The feedback of ``target`` (all tests if None), the notes and the error of a report row."""
    return " ".join([t["output"] for t in row["tests"] if target in (None, t["name"])] + [row["output"], row["error"]])


@pytest.mark.parametrize("name", SUBMISSIONS)
def test_adversarial_submission_gets_exactly_its_score(run, name):
    s, row = SUBMISSIONS[name], run["rows"][name]
    assert row is not None, f"{name} is missing from the report"
    assert row["status"] == s["status"], (row["status"], row["error"])
    want = {ex: (s["expect"].get(ex, "passed"), 0 if ex in s["expect"] else 1) for ex in EXERCISES}
    assert _statuses(row) == want, _text(row)
    for where, phrases in s["phrases"].items():
        for phrase in [phrases] if isinstance(phrases, str) else phrases:
            text = {"notes": row["output"], "error": row["error"], "flags": " ".join(row["flags"])}.get(
                where, _text(row, where))
            assert phrase in text, (where, phrase, text)


def test_classmates_score_what_they_earned(run):
    for name in ("classmate_a", "classmate_b", "solution", "tags_null"):
        row = run["rows"][name]
        assert row["status"] == "graded" and row["score"] == row["max_score"] == 4, (name, _text(row))
    wrong = run["rows"]["classmate_wrong"]
    assert _statuses(wrong) == {**{ex: ("passed", 1) for ex in EXERCISES}, "perceptron_epoch": ("failed", 0)}
    blank = run["rows"]["exercise"]
    assert {s for s, _ in _statuses(blank).values()} == {"not attempted"} and blank["score"] == 0


def _attack(name):
    return [k for k, s in SUBMISSIONS.items() if s["attack"] == name]


def test_attack_stealing_the_answers(run):
    """solutions/, the repository, the grader's files and the other submissions are not in the sandbox:
    a notebook that looks for them everywhere scores 0; calling the spec's reference scores 0."""
    assert _attack("stealing the answers") == ["steal_solutions"]
    assert run["rows"]["steal_solutions"]["score"] == 0
    assert _statuses(run["rows"]["steal_reference_and_thread"])["perceptron_epoch"] == ("failed", 0)


def test_attack_harming_classmates(run):
    """No file of the class, the repository or site-packages changed; no process of a notebook outlived
    the grader; the space a notebook filled was its own; a fork bomb stays in its sandbox."""
    assert run["now"] == run["before"], sorted(set(run["now"].items()) ^ set(run["before"].items()))[:5]
    assert run["site"][0] == run["site"][1]
    assert run["daemons"] == [], "a notebook's process outlived the grader"
    assert run["free"][0] - run["free"][1] < 100 * 2**20, "a notebook filled the disk"
    for name in ("write_everywhere", "daemon", "resources"):
        assert run["rows"][name]["status"] == "graded", name
    for name in ("classmate_a", "classmate_b"):
        assert run["rows"][name]["score"] == 4
    assert run["rows"]["classmate_wrong"]["score"] == 3


def test_attack_falsifying_the_record(run):
    """The report is complete when the grader exits and no daemon rewrites it afterwards; the trusted
    spec, mpkit and the venv stay as they were; a classmate's wrong answer stays wrong."""
    assert run["first"] == run["after"] and run["data"]["status"] == "complete"
    assert not (ROOT / "mpkit" / "evil.py").exists() and not (run["folder"] / "evil.txt").exists()
    assert not any(p.endswith("evil.pth") for p in run["site"][1])
    assert _statuses(run["rows"]["classmate_wrong"])["perceptron_epoch"] == ("failed", 0)
    assert _statuses(run["rows"]["bypass_engine"])["perceptron_epoch"] == ("failed", 0)


def test_attack_bypassing_banned_calls(run):
    """The engine's entry points are traced at run time; a thread started by the notebook does not
    exist when the functions are called; obfuscation puts the notebook before a human."""
    assert run["rows"]["bypass_engine"]["score"] == 1
    assert run["rows"]["steal_reference_and_thread"]["score"] == 1
    row = run["rows"]["obfuscated"]
    assert row["score"] == 0 and {t["extra_data"]["status"] for t in row["tests"]} == {"review"}
    assert [t["extra_data"]["graded_as"] for t in row["tests"]] == ["failed", "failed", "passed", "passed"]


def test_attack_losing_the_report(run):
    """Under a strict UTF-8 stdout, with a non-UTF-8 file name, an unencodable exception message, a
    malformed notebook and a sparse result, the run ends with exit status 0 and a complete report."""
    done = run["done"]
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    out = done.stdout.decode("utf-8")  # strict: the table is valid UTF-8
    assert out.startswith("isolation: bwrap") and "class summary (01_neural_networks):" in out
    assert "caf\\udce9_\\udcff.ipynb" in out and "\x1b" not in out
    assert run["rows"]["integer_source"]["status"] == "invalid"
    assert "the source of cell 3 is not text" in run["rows"]["integer_source"]["error"]
    assert run["rows"]["invalid_json"]["error"].startswith("not a valid notebook (JSON error at line 4")
    assert run["rows"]["not_an_exercise"]["status"] == "invalid"
    assert all(r is not None for r in run["rows"].values())
    totals = run["data"]["totals"]
    assert totals["pending"] == 0 and totals["failed"] == 0 and totals["submissions"] == len(run["rows"])


def test_attack_exhausting_the_grader(run):
    """Floods of output, a flooded channel, a huge result, memory hogs and hung cells cost their own
    submission only; the grader's memory and the run's wall time stay within bounds."""
    assert run["data"]["totals"]["grader_peak_mb"] < PEAK_BOUND_MB
    assert run["wall"] < WALL_BOUND
    assert max(r["execution_time"] for r in run["data"]["submissions"]) <= BUDGET + 3 * GRACE
    assert run["rows"]["slow"]["execution_time"] >= BUDGET
    stuck = run["rows"]["wrong_device_and_stuck"]  # a call that ignores interrupts costs its exercise, no re-run
    assert "run again" not in stuck["output"] and stuck["execution_time"] < BUDGET


def test_attack_gaming_the_assignment(run):
    """The chapter is pinned: another chapter's notebook is refused; a link into solutions/ is not
    followed; a linked folder is not entered; no submission can score more than the assignment's 4."""
    other = run["rows"]["other_chapter"]
    assert other["status"] == "invalid" and "`03_unet`" in other["error"] and other["score"] == 0
    link = run["rows"]["link_to_solutions"]
    assert link["status"] == "invalid" and "outside the submission folder" in link["error"]
    assert not any(r["path"].startswith("linked_folder") for r in run["data"]["submissions"])
    assert max(r["max_score"] for r in run["data"]["submissions"]) == 4


def test_class_summary_in_the_report(run):
    summary = run["data"]["summary"]["01_neural_networks"]
    assert list(summary) == EXERCISES
    graded = sum(r["status"] == "graded" for r in run["data"]["submissions"])
    for e in summary.values():
        assert e["graded"] == graded and 0 < e["passed"] < graded
        assert e["pass_rate"] == round(e["passed"] / graded, 3) and e["most_common_count"] >= 1


@pytest.fixture(scope="module")
def other_chapters(tmp_path_factory):
    """The solutions of the other chapters and their blank exercise notebooks, through the Python API."""
    tmp, paths = tmp_path_factory.mktemp("chapters"), {}
    for src in sorted((ROOT / "solutions").glob("*.ipynb"))[1:]:
        (tmp / "solution").mkdir(exist_ok=True)
        paths[f"solution/{src.stem}"] = tmp / "solution" / src.name
        paths[f"solution/{src.stem}"].write_bytes(src.read_bytes())
        paths[f"exercise/{src.stem}"] = tmp / f"exercise_{src.name}"
        nbformat.write(exercises.make_exercise(nbformat.read(src, as_version=4), f"solutions/{src.name}"),
                       paths[f"exercise/{src.stem}"])
    subs = grading.grade(list(paths.values()), solutions=ROOT / "solutions", jobs=2,
                         limits=grading.Limits(cell=60, notebook=240, call=20))
    return dict(zip(paths, subs))


def test_every_solution_scores_full_marks_and_every_blank_exercise_zero_in_the_sandbox(other_chapters):
    assert other_chapters
    for name, sub in other_chapters.items():
        assert sub.status == "graded" and sub.results, (name, sub.error)
        if name.startswith("solution/"):
            assert sub.score == sub.max_score, (name, [(r.name, r.feedback) for r in sub.results])
        else:
            assert sub.score == 0 and {r.status for r in sub.results} == {"not attempted"}, name
