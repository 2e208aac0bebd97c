"""Checking answers in the notebook: an `Exercise` spec, `check` with feedback, `rejects` for known-wrong answers.

An `Exercise` describes how to test one function: keyword-argument cases, an independent reference,
tolerances, hints by symptom. `check` runs the student's function on those cases and prints what is
wrong, case by case. `rejects` is the instructors' side: it asserts that `check` turns down each
known-wrong answer (a sign, a missing 1/B, a transpose, …), so a check that cannot fail is caught.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mpkit.exercises.feedback import Problem, aliased_outputs, changed_inputs, hint_for, problems


@dataclass(frozen=True)
class Exercise:
    """How to test one student function.

    ``cases(gen)`` returns a list of keyword-argument dicts (draw randomness from ``gen``; add fixed
    hand-built cases for bugs that a random case exposes only by luck); ``reference(**kwargs)``
    computes the expected output independently (autograd, a torch built-in, a closed form). Outputs
    are tensors, numbers, or tuples of them. ``hint`` is the general hint; ``hints`` maps a symptom of
    `mpkit.exercises.feedback.SYMPTOMS` (``"factor"``, ``"sign"``, ``"nan"``, …) to a hint for that
    mistake. ``fresh``: output tensors must not share memory with the inputs. ``banned`` names calls
    the answer must not make (e.g. ``"torch.optim.Adam"``); the grader enforces them.
    """

    name: str
    cases: Callable[[torch.Generator], list[dict[str, Any]]]
    reference: Callable[..., Any]
    rtol: float = 1e-6
    atol: float = 1e-8
    hint: str = ""
    banned: tuple[str, ...] = ()
    points: float = 1.0
    hints: Mapping[str, str] = field(default_factory=dict)
    fresh: bool = True


@dataclass
class Result:
    """Outcome of checking one exercise: status is passed, failed, not attempted or error."""

    name: str
    status: str
    passed: int = 0
    total: int = 0
    feedback: list[str] = field(default_factory=list)
    symptoms: list[str] = field(default_factory=list)
    hint: str = ""

    def __repr__(self) -> str:
        return f"<{self.name}: {self.status}, {self.passed}/{self.total} cases>"


class ExerciseFailed(AssertionError):
    """An attempted answer that does not match the reference (the message says why)."""


def _brief(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return str(tuple(v.shape))
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_brief(x) for x in v[:4]) + (", …" if len(v) > 4 else "")
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k!r}: {_brief(x)}" for k, x in list(v.items())[:4]) + (", …}" if len(v) > 4 else "}")
    return repr(v) if len(repr(v)) <= 40 else type(v).__name__


def describe_args(kwargs: dict[str, Any]) -> str:
    """One short line for a case: tensors by their shape, ``x(3, 4), t=2, grads=((2,), (3, 3))``."""
    return ", ".join(f"{k}{_brief(v)}" if isinstance(v, torch.Tensor) else f"{k}={_brief(v)}"
                     for k, v in kwargs.items())


def clone_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a case's keyword arguments (tensors cloned, also inside tuples, lists, dicts)."""
    return copy.deepcopy({k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})


def case_problems(ex: Exercise, kwargs: dict[str, Any], given: dict[str, Any], actual: Any,
                  expected: Any) -> list[Problem]:
    """Problems of one call: inputs changed in place, outputs aliasing inputs, then the value comparison.

    ``kwargs`` are the original arguments, ``given`` the copy the function received (and may have changed).
    """
    changed = changed_inputs(kwargs, given)
    found = [Problem("inplace", f"argument{'s' * (len(changed) > 1)} {', '.join(f'`{c}`' for c in changed)} "
                     f"{'were' if len(changed) > 1 else 'was'} changed in place; "
                     "compute new tensors instead of modifying inputs")] if changed else []
    if ex.fresh:
        found += [Problem("alias", f"{a}: return a new tensor") for a in aliased_outputs(actual, given)]
    return found + problems(actual, expected, rtol=ex.rtol, atol=ex.atol)


def run_case(ex: Exercise, fn: Callable[..., Any], kwargs: dict[str, Any]) -> list[Problem]:
    """Call ``fn(**kwargs)`` on a copy and compare with the reference; return the problems found.

    Raises ``NotImplementedError`` through, so that callers can report "not attempted".
    """
    expected = ex.reference(**clone_kwargs(kwargs))
    given = clone_kwargs(kwargs)
    actual = fn(**given)
    return case_problems(ex, kwargs, given, actual, expected)


def check(ex: Exercise, fn: Callable[..., Any], *, seed: int = 0, strict: bool = True, quiet: bool = False) -> Result:
    """Check ``fn`` against ``ex`` and print per-case feedback (nothing with ``quiet``).

    An unsolved exercise (``NotImplementedError``) prints "not attempted" and returns. With ``strict``,
    a wrong answer raises `ExerciseFailed` after the feedback, so a solution notebook cannot pass
    with a wrong reference answer. The hint printed is the one for the first symptom found.
    """
    say = (lambda *a: None) if quiet else print
    cases = ex.cases(torch.Generator().manual_seed(seed))
    result = Result(ex.name, "passed", total=len(cases))
    for i, kwargs in enumerate(cases, 1):
        args = describe_args(kwargs)
        try:
            found = run_case(ex, fn, kwargs)
        except NotImplementedError:
            result.status = "not attempted"
            say(f"… {ex.name}: not attempted yet — replace `raise NotImplementedError` with your answer.")
            return result
        except Exception as err:  # the student's code raised: report it, do not crash the notebook
            found = [Problem("raised", f"raised {type(err).__name__}: {err}")]
        if found:
            result.feedback.append(f"case {i} ({args}): " + "; ".join(p.text for p in found))
            result.symptoms += [p.symptom for p in found if p.symptom not in result.symptoms]
            say(f"✗ case {i}/{len(cases)} ({args}):\n    " + "\n    ".join(p.text for p in found))
        else:
            result.passed += 1
            say(f"✓ case {i}/{len(cases)} ({args})")
    if result.passed < result.total:
        result.status = "failed"
        result.hint = hint_for(result.symptoms, ex.hints, ex.hint)
        hint = f"\nHint: {result.hint}" if result.hint else ""
        say(f"{ex.name}: {result.passed}/{result.total} cases correct.{hint}")
        if strict:
            raise ExerciseFailed(f"{ex.name}: {result.feedback[0]}{hint}")
    else:
        say(f"{ex.name}: all {result.total} cases correct ✓")
    return result


def rejects(ex: Exercise, *answers: Callable[..., Any], seed: int = 0) -> None:
    """Assert that `check` rejects every known-wrong answer (each a plausible student bug, named by
    its docstring's first line); print the feedback a student with that bug would read first.

    Used in the solution notebooks' ``known-wrong`` cells, which the exercise notebooks leave out;
    the test suite also grades each answer and asserts that the grader rejects it.
    """
    if len(answers) < 3:
        raise ValueError(f"{ex.name}: list at least 3 known-wrong answers, got {len(answers)}")
    for fn in answers:
        what = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        result = check(ex, fn, seed=seed, strict=False, quiet=True)
        if result.status != "failed":
            raise AssertionError(f"{ex.name}: the check does not reject the known-wrong answer `{fn.__name__}` "
                                 f"({what}): status {result.status!r}; add a case that exposes this bug")
        first = result.feedback[0]
        print(f"✓ rejects {fn.__name__} ({what}): {first[:160]}{'…' if len(first) > 160 else ''}")
