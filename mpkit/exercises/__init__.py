"""The exercises wing: authoring exercise notebooks, checking answers with feedback, grading.

Notebooks use ``from mpkit.exercises import Exercise`` and ``mp.exercises.check(SPEC, fn)``; the
solution notebooks' ``known-wrong`` cells call ``mp.exercises.rejects(SPEC, wrong_1, wrong_2, wrong_3)``.
Grading (``python -m mpkit grade``: `grading`, `spec`, `notebook`, `static`, `driver`, `judge`, `report`,
`bundle`, with `_runner` and `trace` inside the sandbox) is imported only when used.
"""
from mpkit.exercises.authoring import (DROP_TAG, DROP_TAGS, KNOWN_WRONG_TAG, generate, make_exercise, render,
                                       strip_source)
from mpkit.exercises.checking import (Exercise, ExerciseFailed, Result, case_problems, check, clone_kwargs,
                                      describe_args, rejects, run_case)
from mpkit.exercises.feedback import SYMPTOMS, Problem, compare, problems

__all__ = [
    "DROP_TAG", "DROP_TAGS", "KNOWN_WRONG_TAG", "generate", "make_exercise", "render", "strip_source",
    "Exercise", "ExerciseFailed", "Result", "case_problems", "check", "clone_kwargs", "describe_args",
    "rejects", "run_case", "SYMPTOMS", "Problem", "compare", "problems",
]
