"""mpkit.grading: every adversarial submission gets exactly the score it deserves, and a report.

The submissions are built from the chapter-1 exercise notebook: every answer cell gets the solution's
code except one, which gets the adversarial code (a few also add a top-level cell). They are all
graded in one parallel call (short time limits), then each test looks up its own result.
"""
import asyncio
import json
import re
from pathlib import Path

import nbformat
import pytest

from mpkit import _sandbox, exercises, grading
from mpkit.__main__ import gradescope, main, report, table

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "submissions"
CH1 = "01_neural_networks.ipynb"
FAST = grading.Limits(cell=20, notebook=120, call=4)

CE_OK = """def softmax_ce_grad(logits, y):
    p = torch.softmax(logits, dim=1)
    return (p - F.one_hot(y, p.shape[1])) / len(y)
"""
CE_VIA_AUTOGRAD = """def softmax_ce_grad(logits, y):
    x = logits.clone().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(x, y), x)[0]
"""
ADAM = "def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):\n"
ADAM_VIA_OPTIM = """    p = torch.nn.Parameter(theta.clone())
    opt = {make}([p], lr=lr, betas=(beta1, beta2), eps=eps)
    p.grad = grad.clone()
    opt.state[p] = {{"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}}
    opt.step()
    return p.detach().clone(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
"""
PERCEPTRON = "def perceptron_epoch(X, y, w, b, lr=1.0):\n"
PERCEPTRON_OK = PERCEPTRON + """    w, b, mistakes = w.clone(), b.clone(), 0
    for x_i, y_i in zip(X, y):
        if y_i * (w @ x_i + b) <= 0:
            w, b, mistakes = w + lr * y_i * x_i, b + lr * y_i, mistakes + 1
    return w, b, mistakes
"""
EXERCISES = ["softmax_ce_grad", "mlp_backward", "adam_step", "perceptron_epoch"]
BOTH_CE = ("softmax_ce_grad", "mlp_backward")  # the solution's mlp_backward calls the student's softmax_ce_grad

# name: (the exercise whose answer is replaced, its code (None: keep the solution's), a top-level cell
#        inserted after it, {exercise: status} of every exercise that must NOT pass, a phrase of its feedback)
CASES = {
    "raises": ("perceptron_epoch", PERCEPTRON + "    raise ValueError('my bug')", "",
               {"perceptron_epoch": "error"}, "raised ValueError: my bug"),
    "wrong_shape": ("perceptron_epoch", PERCEPTRON_OK.replace("return w,", "return w[None],"), "",
                    {"perceptron_epoch": "failed"}, "shape (1, 2), expected (2,)"),
    "wrong_dtype": ("perceptron_epoch", PERCEPTRON_OK.replace("return w,", "return w.float(),"), "",
                    {"perceptron_epoch": "failed"}, "dtype torch.float32"),
    "wrong_device": ("perceptron_epoch", PERCEPTRON_OK.replace("return w,", "return w.to('meta'),"), "",
                     {"perceptron_epoch": "failed"}, "on meta"),
    "nan_from_overflow": ("softmax_ce_grad", CE_OK.replace("torch.softmax(logits, dim=1)",
                                                           "logits.exp() / logits.exp().sum(1, keepdim=True)"),
                          "", {"softmax_ce_grad": "failed"}, "values are NaN/inf"),
    "infinite_loop": ("adam_step", ADAM + "    while True:\n        pass", "",
                      {"adam_step": "timeout"}, "did not return within 4 s"),
    "uninterruptible_loop": ("adam_step", ADAM + "    while True:\n        try:\n            while True:\n"
                             "                pass\n        except BaseException:\n            pass", "",
                             {"adam_step": "timeout"}, "an infinite loop?"),
    "prints_megabytes": ("perceptron_epoch",
                         PERCEPTRON_OK.replace(":\n    w, b,", ":\n    print('y' * 1_000_000)\n    w, b,"),
                         "print('x' * 5_000_000)", {}, ""),
    "exit_in_function": ("perceptron_epoch", PERCEPTRON + "    import os\n    os._exit(1)", "",
                         {"perceptron_epoch": "error"}, "the kernel died while running your function"),
    "exit_at_top_level": ("softmax_ce_grad", None, "import os\nos._exit(1)", {}, ""),
    "segfault": ("mlp_backward", "def mlp_backward(X, y, W1, b1, W2, b2):\n    import ctypes\n"
                 "    return ctypes.string_at(0)", "", {"mlp_backward": "error"}, "the kernel died"),
    "always_equal": ("perceptron_epoch", "class Yes:\n    def __eq__(self, other):\n        return True\n\n\n"
                     + PERCEPTRON + "    return Yes()", "", {"perceptron_epoch": "failed"},
                     "does not accept the result, a Yes"),
    "fake_tensor": ("adam_step", "class T(torch.Tensor):\n    def __eq__(self, other):\n        return True\n\n"
                    "    def allclose(self, *args, **kwargs):\n        return True\n\n\n"
                    + ADAM + "    return tuple(x.as_subclass(T) for x in (theta, m, v))", "",
                    {"adam_step": "failed"}, "does not accept the result"),
    "mutates_input": ("adam_step", ADAM + "    m.mul_(beta1).add_((1 - beta1) * grad)\n"
                      "    v.mul_(beta2).add_((1 - beta2) * grad * grad)\n"
                      "    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)\n"
                      "    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v", "",
                      {"adam_step": "failed"}, "arguments `m`, `v` were changed in place"),
    "global_state": ("softmax_ce_grad", None, "import numpy as np\ntorch.manual_seed(123)\nnp.random.seed(1)\n"
                     "torch.set_default_dtype(torch.float64)\ntorch.set_grad_enabled(False)", {}, ""),
    "torch_numpy_patched": ("adam_step", ADAM + "    return theta, m, v",
                            "import numpy as np\nnp.allclose = np.array_equal = lambda *a, **k: True\n"
                            "np.testing.assert_allclose = lambda *a, **k: None\n"
                            "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
                            "torch.testing.assert_close = lambda *a, **k: None\n"
                            "torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)\n"
                            "torch.save = lambda *a, **k: None\ntorch.load = lambda *a, **k: None",
                            {"adam_step": "failed"}, "max relative error"),
    "check_replaced": ("perceptron_epoch", PERCEPTRON + "    return w, b, 0",
                       "import sys\nmp.exercises.check = lambda *a, **k: print('all cases correct')\n"
                       "mp.exercises.compare = lambda *a, **k: []\nsys.modules['mpkit'] = None",
                       {"perceptron_epoch": "failed"}, "max relative error"),
    "banned_adam_alias": ("adam_step", "from torch.optim import Adam as A\n\n\n" + ADAM
                          + ADAM_VIA_OPTIM.format(make="A"), "", {"adam_step": "failed"}, "calls torch.optim.Adam"),
    "banned_adam_obfuscated": ("adam_step", ADAM + "    optim = __import__('importlib').import_module('torch.' + 'optim')\n"
                               + ADAM_VIA_OPTIM.format(make="getattr(optim, 'Ad' + 'am')"), "",
                               {"adam_step": "failed"}, "calls torch.optim.Adam"),
    "banned_autograd": ("softmax_ce_grad", CE_VIA_AUTOGRAD, "", dict.fromkeys(BOTH_CE, "failed"),
                        "calls torch.autograd.grad"),
    "banned_autograd_engine": ("softmax_ce_grad", "def softmax_ce_grad(logits, y):\n"
                               "    x = logits.clone().requires_grad_()\n"
                               "    loss = -torch.log_softmax(x, 1)[torch.arange(len(y)), y].mean()\n"
                               "    getattr(torch.autograd, 'back' + 'ward')(loss, inputs=[x])\n    return x.grad",
                               "", dict.fromkeys(BOTH_CE, "failed"), "the autograd engine"),
    "tampers_with_tracing": ("softmax_ce_grad", "import sys\n\n\n" + CE_VIA_AUTOGRAD.replace(
                             "    x =", "    sys.setprofile(None)\n    x ="), "",
                             dict.fromkeys(EXERCISES, "failed"), "interferes with the grader"),
    "tampers_with_tracing_at_run_time": ("softmax_ce_grad", "import sys\n\n\ndef softmax_ce_grad(logits, y):\n"
                                         "    getattr(sys, 'set' + 'profile')(None)  # hidden from the source check\n"
                                         "    x = logits.clone().requires_grad_()\n"
                                         "    loss = -torch.log_softmax(x, 1)[torch.arange(len(y)), y].mean()\n"
                                         "    return getattr(torch.autograd, 'gr' + 'ad')(loss, x)[0]", "",
                                         dict.fromkeys(BOTH_CE, "failed"), "switched off the grader's call tracing"),
    "warnings_to_stderr": ("softmax_ce_grad", "import sys\nimport warnings\n\n\n" + CE_OK.replace(
                           "    p =", "    warnings.warn('this is deprecated')\n    print('note', file=sys.stderr)\n    p ="),
                           "print('a warning on stderr', file=sys.stderr)", {}, ""),
}


def _answers(nb):
    """{function name: source} of the cells that define a top-level function."""
    return {m[1]: c.source for c in nb.cells if c.cell_type == "code"
            for m in [re.search(r"^def (\w+)\(", c.source, re.M)] if m}


def _adversarial(target, code, extra):
    nb = nbformat.read(ROOT / "exercises" / CH1, as_version=4)
    solved = _answers(nbformat.read(ROOT / "solutions" / CH1, as_version=4))
    for cell in list(nb.cells):
        m = re.search(r"^def (\w+)\(", cell.source, re.M) if cell.cell_type == "code" else None
        if m and m[1] in solved:
            cell.source = code if m[1] == target and code is not None else solved[m[1]]
            if m[1] == target and extra:
                nb.cells.insert(nb.cells.index(cell) + 1, nbformat.v4.new_code_cell(extra))
    return nb


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{name: path} of every submission this file grades."""
    tmp = tmp_path_factory.mktemp("submissions")
    paths = {}
    for name, (target, code, extra, _, _) in CASES.items():
        paths[name] = tmp / f"{name}.ipynb"
        nbformat.write(_adversarial(target, code, extra), paths[name])
    (tmp / "solutions").mkdir()
    for src in sorted((ROOT / "solutions").glob("*.ipynb")):  # a copy: others may be editing solutions/
        paths[f"solution/{src.stem}"] = tmp / "solutions" / src.name
        paths[f"solution/{src.stem}"].write_bytes(src.read_bytes())
        fresh = exercises.make_exercise(nbformat.read(src, as_version=4), f"solutions/{src.name}")
        paths[f"exercise/{src.stem}"] = tmp / f"exercise_{src.name}"
        nbformat.write(fresh, paths[f"exercise/{src.stem}"])
    for f in sorted(HERE.glob("*.ipynb")):
        paths[f.stem] = f
    return paths


@pytest.fixture(scope="module")
def before(built):
    return {name: path.read_bytes() for name, path in built.items()}


@pytest.fixture(scope="module")
def graded(built, before):
    """Every submission, graded in one parallel call: {name: Submission}."""
    subs = grading.grade(list(built.values()), solutions=ROOT / "solutions", jobs=2, limits=FAST)
    return dict(zip(built, subs))


@pytest.mark.parametrize("name", CASES)
def test_adversarial_submission_gets_exactly_its_score(graded, name):
    target, _, _, verdicts, phrase = CASES[name]
    sub = graded[name]
    assert not sub.error, sub.error
    got = {r.name: (r.status, r.score) for r in sub.results}
    want = {ex: (verdicts.get(ex, "passed"), 0 if ex in verdicts else 1) for ex in EXERCISES}
    assert got == want, "\n".join(f"{r.name}: {r.feedback}" for r in sub.results) + f"\n{sub.notes}"
    feedback = " ".join(line for r in sub.results if r.name == target for line in r.feedback)
    assert phrase in feedback


def test_a_cell_that_kills_the_kernel_is_skipped_and_named(graded):
    notes = " ".join(graded["exit_at_top_level"].notes)
    assert "(`import os`) killed the kernel; the notebook was run again without it" in notes


def test_every_solution_notebook_scores_full_marks(graded):
    solutions = {k: s for k, s in graded.items() if k.startswith("solution/")}
    assert solutions
    for name, sub in solutions.items():
        assert sub.results and sub.score == sub.max_score, (name, [(r.name, r.feedback) for r in sub.results])
        assert sub.seconds < 90, f"{name} took {sub.seconds:.0f} s to grade"  # seconds, not minutes


def test_every_fresh_exercise_notebook_scores_zero_not_attempted(graded):
    fresh = {k: s for k, s in graded.items() if k.startswith("exercise/")}
    assert fresh
    for name, sub in fresh.items():
        assert sub.results and sub.score == 0, name
        assert {r.status for r in sub.results} == {"not attempted"}, (name, [(r.name, r.feedback) for r in sub.results])


def test_unreadable_notebooks_get_a_clear_error(graded):
    assert graded["invalid_json"].error.startswith("not a valid notebook (JSON error at line 4")
    assert graded["not_an_exercise"].error.startswith("not an exercise notebook")
    assert graded["invalid_json"].score == graded["not_an_exercise"].score == 0


def test_no_submission_file_is_modified(graded, built, before):
    assert all(path.read_bytes() == before[name] for name, path in built.items())


def test_time_limits_per_cell_and_for_the_whole_notebook(tmp_path):
    cells = [(0, "while True:\n    pass"), (1, "import time\ntime.sleep(30)"), (2, "def f():\n    return 1")]
    run = asyncio.run(_sandbox.run_submission(cells, [("f", tmp_path / "unused.pt", [])], tmp_path,
                                              grading.Limits(cell=2, notebook=3, call=2)))
    assert run.errors[0] == "cell 1 (`while True:`) did not finish within 2 s and was interrupted"
    assert run.notes == ["your notebook ran longer than 3 s: cell 3 (`def f():`) and the cells after it were not run"]
    assert run.calls["f"].kind == "done" and run.calls["f"].meta["defined"] is False


def test_static_check_follows_aliases_and_helpers():
    cells = ["import torch.optim as o\nfrom torch.autograd import grad as g",
             "def helper(x):\n    return g(x.sum(), x)\n\ndef f(x, grad):\n    return helper(x) + grad",
             "def h(theta):\n    return o.Adam([theta])", "def k(loss):\n    loss.backward()"]
    assert grading.static_banned(cells, "f", ["torch.autograd.grad"]) == ["torch.autograd.grad"]
    assert grading.static_banned(cells, "h", ["torch.optim.Adam"]) == ["torch.optim.Adam"]
    assert grading.static_banned(cells, "k", ["torch.Tensor.backward"]) == ["torch.Tensor.backward"]
    assert grading.static_banned(["def f(grad):\n    return grad * 2"], "f", ["torch.autograd.grad"]) == []


def test_cli_exit_status_and_json_report(tmp_path, capsys):
    report, results = tmp_path / "report.json", tmp_path / "results.json"
    assert main(["grade", str(HERE), "--json", str(report)]) == 0  # bad submissions: grading still worked
    out = capsys.readouterr().out
    assert "invalid_json.ipynb" in out and "not an exercise notebook" in out
    data = json.loads(report.read_text())
    assert set(data) == {"submissions", "totals"} and data["totals"]["submissions"] == 2
    for sub in data["submissions"]:
        assert {"path", "score", "max_score", "execution_time", "output", "tests"} <= set(sub)
        assert sub["score"] == 0 and sub["output"]
    assert main(["grade", str(HERE / "not_an_exercise.ipynb"), "--gradescope", str(results)]) == 0
    assert set(json.loads(results.read_text())) == {"score", "execution_time", "output", "tests"}
    for argv in (["grade", str(tmp_path / "missing.ipynb")], ["grade", str(tmp_path)],
                 ["grade", str(HERE), "--gradescope", str(results)]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_json_report_of_graded_submissions_follows_gradescope(graded):
    rep = report([graded["banned_autograd"], graded["solution/01_neural_networks"]], 1.0)
    json.dumps(rep)  # serialisable
    tests = rep["submissions"][0]["tests"]
    assert [t["name"] for t in tests] == EXERCISES
    for t in tests:
        assert set(t) == {"name", "score", "max_score", "status", "output", "extra_data"}
        assert t["status"] in ("passed", "failed") and t["extra_data"]["status"] in grading.STATUSES
    assert rep["totals"]["score"] == 2 + 4 and rep["totals"]["max_score"] == 8
    assert set(gradescope(graded["raises"])) == {"score", "execution_time", "output", "tests"}
    assert "softmax_ce_grad: failed — `softmax_ce_grad` calls torch.autograd.grad" in table(
        [graded["banned_autograd"]])
