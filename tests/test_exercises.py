"""mpkit.exercises: stripping solutions, generating exercise notebooks, and feedback on answers."""
from pathlib import Path

import nbformat
import pytest
import torch

from mpkit import exercises
from mpkit.exercises import Exercise, ExerciseFailed, check, strip_source

ROOT = Path(__file__).resolve().parents[1]

SOLVED = '''def f(x):
    """doc"""
    # BEGIN SOLUTION hint: square it
    y = x * x
    return y
    # END SOLUTION

print(f(2))'''


def test_strip_source_keeps_indentation_hint_and_the_rest():
    out = strip_source(SOLVED)
    assert "x * x" not in out and "print(f(2))" in out and '"""doc"""' in out
    assert "    # TODO: square it\n    raise NotImplementedError(" in out


@pytest.mark.parametrize("src, msg", [
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "inside a function body"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION", "without a matching BEGIN"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION", "nested"),
])
def test_strip_source_rejects_malformed_regions(src, msg):
    with pytest.raises(ValueError, match=msg):
        strip_source(src, where="sol.ipynb cell 3")


def test_make_exercise_clears_outputs_and_drops_tagged_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SOLVED, outputs=[nbformat.v4.new_output("stream", text="4")], execution_count=3),
        nbformat.v4.new_markdown_cell("worked answer", metadata={"tags": [exercises.DROP_TAG]}),
        nbformat.v4.new_markdown_cell("task"),
    ])
    ex = exercises.make_exercise(nb, "solutions/x.ipynb")
    assert len(ex.cells) == 2 and ex.cells[0].outputs == [] and ex.cells[0].execution_count is None
    assert ex.metadata["mpkit"] == {"kind": "exercise", "generated_from": "solutions/x.ipynb"}
    assert "x * x" in nb.cells[0].source  # the solution notebook itself is untouched


def test_generate_writes_then_reports_up_to_date(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    src.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOLVED)]), src / "01_x.ipynb")
    assert exercises.generate(src, dst, check_only=True) == [dst / "01_x.ipynb"]
    assert not dst.exists()  # check_only writes nothing
    assert exercises.generate(src, dst) == [dst / "01_x.ipynb"]
    assert exercises.generate(src, dst, check_only=True) == []
    # a student's answers in the exercise file survive regeneration as a backup copy
    (dst / "01_x.ipynb").write_text((dst / "01_x.ipynb").read_text().replace("square it", "MY WORK"))
    assert exercises.generate(src, dst) == [dst / "01_x.ipynb"]
    backups = list((dst / ".backup").glob("01_x.*.ipynb"))
    assert len(backups) == 1 and "MY WORK" in backups[0].read_text()


def test_committed_exercises_are_what_the_generator_produces():
    stale = exercises.generate(ROOT / "solutions", ROOT / "exercises", check_only=True)
    assert not stale, f"stale exercise notebooks {stale}: run `make exercises` (python -m mpkit exercises)"
    assert sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb")), "an exercise has no solution notebook"


def test_cli_check_mode_exit_status(tmp_path, capsys):
    from mpkit.__main__ import main

    (tmp_path / "s").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOLVED)]), tmp_path / "s" / "a.ipynb")
    assert main(["exercises", str(tmp_path / "s"), str(tmp_path / "e"), "--check"]) == 1
    assert main(["exercises", str(tmp_path / "s"), str(tmp_path / "e")]) == 0
    assert main(["exercises", str(tmp_path / "s"), str(tmp_path / "e"), "--check"]) == 0
    with pytest.raises(SystemExit):
        main(["exercises", str(tmp_path / "missing")])


# ---------------------------------------------------------------- feedback

def _cases(gen):
    return [dict(x=torch.randn(3, 4, generator=gen, dtype=torch.float64)),
            dict(x=torch.randn(2, 5, generator=gen, dtype=torch.float64))]


SQUARE = Exercise("square", _cases, lambda x: (x * x, x.sum()), rtol=1e-10, hint="multiply x by itself")


def _feedback(fn, capsys):
    with pytest.raises(ExerciseFailed) as err:
        check(SQUARE, fn)
    return str(err.value) + capsys.readouterr().out


def test_check_passes_correct_answer(capsys):
    result = check(SQUARE, lambda x: (x**2, x.sum()))
    assert result.status == "passed" and result.passed == result.total == 2
    assert "all 2 cases correct" in capsys.readouterr().out


def test_check_not_attempted_does_not_raise(capsys):
    def unsolved(x):
        raise NotImplementedError

    assert check(SQUARE, unsolved).status == "not attempted"
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.parametrize("answer, expected", [
    (lambda x: (x.T * x.T, x.sum()), "shape (4, 3), expected (3, 4)"),
    (lambda x: ((x * x).float(), x.sum()), "dtype torch.float32, expected torch.float64"),
    (lambda x: (x * x / 0 * 0, x.sum()), "NaN where the expected value is a number"),
    (lambda x: (x * x * 1.001, x.sum()), "every value is 1.001 × the expected one"),
    (lambda x: (-x * x, x.sum()), "every value has the opposite sign"),
    (lambda x: (x * x + (x.abs() > 2), x.sum()), "values wrong; worst got"),
    (lambda x: x * x, "expected a tuple of 2 values"),
    (lambda x: ((x * x).numpy(), x.sum()), "expected a torch.Tensor, got ndarray"),
    (lambda x: (x * x, "sum"), "output[1]: expected a torch.Tensor, got str"),
    (lambda x: (x.mul_(x), x.sum()), "changed in place"),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_feedback_names_the_problem(capsys, answer, expected):
    text = _feedback(answer, capsys)
    assert expected in text
    assert "Hint: multiply x by itself" in text


def test_check_non_strict_returns_failed_result(capsys):
    result = check(SQUARE, lambda x: (x, x.sum()), strict=False)
    assert result.status == "failed" and result.passed == 0 and len(result.feedback) == 2
    assert repr(result) == "<square: failed, 0/2 cases>"


def test_compare_numbers_accepts_int_float_and_one_element_tensor():
    assert exercises.compare(3, 3, rtol=0, atol=0) == []
    assert exercises.compare(torch.tensor(3.0), 3, rtol=0, atol=0) == []
    assert exercises.compare("3", 3, rtol=0, atol=0) == ["output: expected a number, got str"]
    assert "relative error" in exercises.compare(4, 3, rtol=1e-3, atol=0)[0]


# ---------------------------------------------------------------- the comparison's edge cases (issue 7)

def test_nan_positions_must_match_exactly():
    e = torch.tensor([1.0, float("nan"), 3.0], dtype=torch.float64)
    assert exercises.compare(e.clone(), e, rtol=1e-9, atol=0) == []
    wrong = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)  # a number where NaN is expected
    assert "a number in 1 places where NaN is expected" in exercises.compare(wrong, e, rtol=1e-9, atol=0)[0]
    nan_elsewhere = torch.tensor([float("nan"), float("nan"), 3.0], dtype=torch.float64)
    assert "1 NaN where the expected value is a number" in exercises.compare(nan_elsewhere, e, rtol=1e-9, atol=0)[0]


def test_error_names_the_worst_element_and_prints_enough_digits():
    e = torch.tensor([0.0, 0.0626773, 5.0], dtype=torch.float64)
    a = torch.tensor([1e-3, 0.0626773 + 3e-9, 5.0], dtype=torch.float64)
    msg = exercises.compare(a, e, rtol=1e-6, atol=1e-12)[0]
    assert "at index (0,)" in msg and "the expected value is 0" in msg and "e+300" not in msg
    msg = exercises.compare(a[1:], e[1:], rtol=1e-9, atol=0)[0]
    assert "got 0.062677303, expected 0.0626773 at index (0,)" in msg, msg


def test_symptoms_sign_factor_transpose():
    e = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kinds = lambda a: [p.symptom for p in exercises.problems(a, e, rtol=1e-9, atol=1e-12)]  # noqa: E731
    assert kinds(-e) == ["sign"] and kinds(e / 8) == ["factor"] and kinds(e.T.contiguous()) == ["transpose"]
    assert "(= 1/8)" in exercises.compare(e / 8, e, rtol=1e-9, atol=1e-12)[0]
    assert kinds(e[:, :3]) == ["shape"] and kinds(e.float()) == ["dtype"]


def test_in_place_changes_inside_tuples_lists_and_dicts_are_caught(capsys):
    ex = Exercise("f", lambda g: [dict(xs=(torch.ones(3), [torch.ones(2)]), d={"k": torch.ones(2)})],
                  lambda xs, d: xs[0].sum())

    def sneaky(xs, d):
        d["k"].add_(1)
        xs[1][0].mul_(2)
        return xs[0].sum()

    def nested_change(xs, d):
        xs[1][0].add_(1)
        return xs[0].sum()

    result = check(ex, sneaky, strict=False)
    assert "arguments `xs[1][0]`, `d['k']` were changed in place" in result.feedback[0], result.feedback
    assert "d={'k': (2,)}" in result.feedback[0]
    assert check(ex, nested_change, strict=False).symptoms == ["inplace"]
    assert check(ex, lambda xs, d: xs[0].sum(), strict=False).status == "passed"


def test_returning_an_input_or_a_view_of_it_fails_when_outputs_must_be_new():
    ex = Exercise("ident", _cases, lambda x: x.clone())
    assert check(ex, lambda x: x, strict=False).symptoms == ["alias"]
    assert check(ex, lambda x: x.view(-1).view(x.shape), strict=False).symptoms == ["alias"]
    assert check(ex, lambda x: x.clone(), strict=False).status == "passed"
    lenient = Exercise("ident", _cases, lambda x: x.clone(), fresh=False)
    assert check(lenient, lambda x: x, strict=False).status == "passed"


def test_the_hint_follows_the_symptom(capsys):
    ex = Exercise("square", _cases, lambda x: (x * x, x.sum()), rtol=1e-10, hint="general",
                  hints={"factor": "did you divide by the batch size twice?"})
    assert check(ex, lambda x: (x * x / 2, x.sum()), strict=False).hint == "did you divide by the batch size twice?"
    assert check(ex, lambda x: (x * x + 1, x.sum()), strict=False).hint == "general"
    bare = Exercise("square", _cases, lambda x: (x * x, x.sum()), rtol=1e-10)
    assert "opposite sign" in check(bare, lambda x: (-x * x, x.sum()), strict=False).feedback[0]


def test_rejects_asserts_that_every_known_wrong_answer_fails(capsys):
    def no_square(x):
        """returns x, not x squared"""
        return x.clone(), x.sum()

    def negated(x):
        """a sign error"""
        return -x * x, x.sum()

    def halved(x):
        """an extra factor 1/2"""
        return x * x / 2, x.sum()

    exercises.rejects(SQUARE, no_square, negated, halved)
    out = capsys.readouterr().out
    assert out.count("✓ rejects") == 3 and "(a sign error): case 1" in out

    def actually_right(x):
        """not a bug at all"""
        return x * x, x.sum()

    with pytest.raises(AssertionError, match="does not reject the known-wrong answer `actually_right`"):
        exercises.rejects(SQUARE, no_square, negated, actually_right)
    with pytest.raises(ValueError, match="at least 3"):
        exercises.rejects(SQUARE, no_square)


def test_known_wrong_cells_are_left_out_of_the_exercise():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SOLVED),
        nbformat.v4.new_code_cell("def wrong(x):\n    return x", metadata={"tags": [exercises.KNOWN_WRONG_TAG]})])
    assert len(exercises.make_exercise(nb, "s.ipynb").cells) == 1
