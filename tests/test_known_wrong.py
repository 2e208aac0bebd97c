"""Every exercise lists at least three known-wrong answers, and the grader rejects each of them.

The solution notebooks' ``known-wrong`` cells define plausible buggy answers and call
``mp.exercises.rejects(SPEC, wrong_1, wrong_2, ...)``: running the solution notebook (nbval) asserts
that the notebook's own check rejects them on its cases. Here the grader gets them as submissions: the
k-th submission of a chapter is its exercise notebook with the k-th wrong answer of every exercise put
in place of the stub, and every one of those exercises must lose its point on the grader's own cases.
"""
import ast
from pathlib import Path

import nbformat
import pytest

from mpkit import exercises
from mpkit.exercises import grading

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LIMITS = grading.Limits(cell=60, notebook=240, call=20)


def _is_rejects(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
        ast.unparse(node.value.func).split(".")[-1] == "rejects"


def known_wrong(path: Path) -> tuple[str, dict[str, list[str]]]:
    """The source of the ``known-wrong`` cells without their `rejects` calls, and
    {exercise function name: [wrong answer function names]} from those calls."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {}
    exec(grading.PRELUDE, namespace)  # noqa: S102 - the instructors' own spec cells
    for cell in nb.cells:
        if cell.cell_type == "code" and grading.SPEC_TAG in cell.metadata.get("tags", []):
            exec(cell.source, namespace)  # noqa: S102
    body, wrong = [], {}
    for cell in nb.cells:
        if cell.cell_type != "code" or exercises.KNOWN_WRONG_TAG not in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(cell.source)
        for node in tree.body:
            if _is_rejects(node):
                spec, *answers = node.value.args
                name = namespace[ast.unparse(spec)].name
                wrong.setdefault(name, []).extend(ast.unparse(a) for a in answers)
        tree.body = [n for n in tree.body if not _is_rejects(n)]
        body.append(ast.unparse(tree))
    return "\n\n\n".join(body), wrong


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_exercise_lists_three_known_wrong_answers(path):
    chapter = grading.load_chapter(path)
    _, wrong = known_wrong(path)
    for ex in chapter.exercises:
        assert len(wrong.get(ex.name, [])) >= 3, \
            f"{path.name}: exercise {ex.name} lists {len(wrong.get(ex.name, []))} known-wrong answers, need 3"


def _submissions(tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """{id: (notebook, {exercise: the wrong answer it holds})} for every chapter and index k."""
    subs = {}
    for path in SOLUTIONS:
        source, wrong = known_wrong(path)
        for k in range(max((len(v) for v in wrong.values()), default=0)):
            chosen = {name: answers[k] for name, answers in wrong.items() if k < len(answers)}
            nb = exercises.make_exercise(nbformat.read(path, as_version=4), f"solutions/{path.name}")
            binding = "\n".join(f"{name} = {fn}" for name, fn in chosen.items())
            nb.cells.append(nbformat.v4.new_code_cell(f"{source}\n\n\n{binding}\n"))
            out = tmp / f"{path.stem}__wrong{k}.ipynb"
            nbformat.write(nb, out)
            subs[out.stem] = out, chosen
    return subs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = _submissions(tmp_path_factory.mktemp("known_wrong"))
    if not subs:
        pytest.skip("no known-wrong answers yet")
    results = grading.grade([p for p, _ in subs.values()], solutions=ROOT / "solutions", jobs=2, limits=LIMITS)
    return {key: (chosen, sub) for (key, (_, chosen)), sub in zip(subs.items(), results)}


def test_the_grader_rejects_every_known_wrong_answer(graded):
    accepted = []
    for key, (chosen, sub) in graded.items():
        assert not sub.error, f"{key}: {sub.error}"
        by_name = {r.name: r for r in sub.results}
        accepted += [f"{key}: {fn} scored {by_name[name].status}" for name, fn in chosen.items()
                     if by_name[name].status == "passed" or by_name[name].score > 0]
        assert all(by_name[name].status != "not attempted" for name in chosen), \
            f"{key}: a wrong answer was not even called: {[(r.name, r.feedback) for r in sub.results]}"
    assert not accepted, "the grader accepts known-wrong answers:\n" + "\n".join(accepted)
