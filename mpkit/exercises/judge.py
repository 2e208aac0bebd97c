"""Scoring, in the grader's process: each case's decoded result against the reference, then one exercise.

`judge_case` compares as soon as a case's result arrives (so only its verdict is kept, not the
tensors). `judge_exercise` decides the status of an exercise from its verdicts, what the tracer saw,
the static checks and how the sandbox ended. An exercise scores all of its points or none.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mpkit.exercises.checking import Exercise, describe_args
from mpkit.exercises.driver import CaseRecord
from mpkit.exercises.feedback import Problem, changed_inputs, hint_for, problems
from mpkit.exercises.session import ExerciseRun, Limits
from mpkit.exercises.spec import ENGINE, ENGINE_WRAPPER
from mpkit.exercises.trace import FORK_HOOK, PROCESS, REFERENCE, TAMPER, THREAD
from mpkit.exercises.wire import unaccepted

STATUSES = ("passed", "failed", "not attempted", "error", "timeout", "review")


@dataclass
class ExerciseResult:
    """One exercise of one submission: ``status`` is one of `STATUSES`; the first feedback line first.
    ``graded_as``: under review, the status the answer would have had."""

    name: str
    status: str
    score: float
    max_score: float
    feedback: list[str] = field(default_factory=list)
    symptom: str = ""
    graded_as: str = ""


@dataclass
class Verdict:
    """One case: ``kind`` is ok, failed or error; what the tracer saw during the call."""

    kind: str
    problems: list[Problem] = field(default_factory=list)
    raised: str = ""
    hits: list[str] = field(default_factory=list)
    tampered: bool = False


def judge_case(ex: Exercise, rec: CaseRecord, case: dict[str, Any], expected: Any) -> Verdict:
    """The verdict of one call from its record (inputs ``case`` as the grader sent them)."""
    v = Verdict("failed", raised=rec.raised, hits=rec.hits, tampered=rec.tampered)
    if rec.raised:
        return Verdict("error", [Problem("raised", f"raised {rec.raised}")], rec.raised, rec.hits, rec.tampered)
    if rec.problem or (bad := unaccepted(rec.out)):
        why = rec.problem or f"a {bad[0].what}: {bad[0].why}"
        v.problems = [Problem("type", f"the grader does not accept the result, {why}; "
                              "return torch tensors, Python numbers or tuples of them")]
        return v
    changed = changed_inputs(case, rec.after if isinstance(rec.after, dict) else {})
    if changed:
        v.problems.append(Problem("inplace", f"argument{'s' * (len(changed) > 1)} "
                                  f"{', '.join(f'`{c}`' for c in changed)} {'were' if len(changed) > 1 else 'was'} "
                                  "changed in place; compute new tensors instead of modifying inputs"))
    if ex.fresh:
        v.problems += [Problem("alias", f"{a}: return a new tensor") for a in rec.aliases]
    v.problems += problems(rec.out, expected, rtol=ex.rtol, atol=ex.atol)
    v.kind = "failed" if v.problems else "ok"
    return v


def _where(cases: Sequence[dict[str, Any]], k: int) -> str:
    k = min(max(k, 1), len(cases))
    return f"case {k} ({describe_args(cases[k - 1])})" if cases else "its first case"


def _traced(ex: Exercise, hits: set[str], banned: Sequence[str], static: Sequence[str],
            copies: Sequence[str]) -> tuple[str, str] | None:
    """``(status, feedback)`` when the tracer or the static check decides the exercise on its own."""
    if copies or REFERENCE in hits:
        which = f" (`{'`, `'.join(copies)}`)" if copies else ""
        return "failed", (f"`{ex.name}` calls the exercise's reference solution{which}: that is the grader's "
                          "answer, not yours")
    names = sorted(set(static) | {h for h in hits if h in banned})
    if names:
        shown = ", ".join("the autograd engine (backward)" if b in (ENGINE, ENGINE_WRAPPER) else b for b in names)
        return "failed", f"`{ex.name}` calls {shown}, which this exercise asks you to implement yourself"
    if TAMPER in hits:
        return "failed", "your function switched off the grader's call tracing (sys.setprofile)"
    if FORK_HOOK in hits:
        return "review", ("your notebook registered a fork hook (os.register_at_fork): it would run, untraced, "
                          "where your function is called, so the answer is held for an instructor's review")
    if THREAD in hits or PROCESS in hits:
        what = "a thread" if THREAD in hits else "a process"
        return "review", (f"your function started {what} while being graded: work done there is not traced, "
                          "so the answer is held for an instructor's review")
    return None


def _ended(ex: Exercise, run: ExerciseRun, cases: Sequence[dict[str, Any]], limits: Limits) -> tuple[str, str] | None:
    at = _where(cases, run.started)
    if run.kind == "budget":
        return "timeout", f"the submission's time budget ({limits.total:g} s) ran out before `{ex.name}` was graded"
    if not run.defined:
        return "error", f"`{ex.name}` is not defined after your notebook ran (did its cell fail?)"
    if run.kind == "too_large":
        return "failed", (f"your function's result on {at} is larger than the grader accepts "
                          f"({limits.result_bytes / 2**20:g} MB with the inputs it returns)")
    if run.kind == "timeout":
        return "timeout", f"your function did not return within {limits.call:g} s on {at}: an infinite loop?"
    if run.kind in ("died", "lost"):
        return "error", (f"your function's process died on {at}: os._exit, a crash, too much memory "
                         "or a result too large")
    if len(run.cases) != len(cases):
        return "error", f"the grader's calls stopped after {len(run.cases)} of {len(cases)} cases"
    return None


def judge_exercise(ex: Exercise, run: ExerciseRun, cases: Sequence[dict[str, Any]], banned: Sequence[str],
                   static: Sequence[str], copies: Sequence[str], limits: Limits) -> ExerciseResult:
    """Score one exercise from its `Verdict`s (in ``run.cases``) and how its calls ended."""
    verdicts: list[Verdict] = run.cases
    hits = {h for v in verdicts for h in v.hits} | ({TAMPER} if any(v.tampered for v in verdicts) else set())
    decided = _traced(ex, hits, banned, static, copies) or _ended(ex, run, cases, limits)
    symptoms: list[str] = []
    if decided:
        status, feedback = decided[0], [decided[1]]
    elif all(v.raised.startswith("NotImplementedError") for v in verdicts):
        status, feedback = "not attempted", ["it still raises NotImplementedError"]
    else:
        bad = [(i, v) for i, v in enumerate(verdicts) if v.kind != "ok"]
        status = "error" if any(v.kind == "error" for _, v in bad) else "failed" if bad else "passed"
        feedback = [f"case {i + 1}/{len(cases)} ({describe_args(cases[i])}): " + "; ".join(p.text for p in v.problems)
                    for i, v in bad[:3]] + ([f"{len(bad) - 3} more cases are wrong"] if len(bad) > 3 else [])
        symptoms = [p.symptom for _, v in bad for p in v.problems]
    text = hint_for(symptoms, ex.hints, ex.hint) if status in ("failed", "error") else ""
    return ExerciseResult(ex.name, status, ex.points if status == "passed" else 0.0, ex.points,
                          feedback + ([f"Hint: {text}"] if text else []), symptoms[0] if symptoms else "")


def under_review(result: ExerciseResult, flags: Sequence[str]) -> ExerciseResult:
    """The result of an exercise of a notebook that the static check flagged: 0 points until a human decides."""
    shown = "; ".join(flags[:4]) + (f"; {len(flags) - 4} more" if len(flags) > 4 else "")
    note = (f"held for an instructor's review: the notebook uses {shown}, which can hide what code does from "
            f"the grader's checks (graded without the flag: {result.status})")
    return ExerciseResult(result.name, "review", 0.0, result.max_score, [note, *result.feedback], result.symptom,
                          result.status)
