"""The grader's parts, each on its own and without a sandbox: the wire format, the spec loader, the
static checks, reading submissions, the judge, the tracer, the reports and the command line's errors."""
import json
import os
from pathlib import Path

import nbformat
import pytest
import torch

from mpkit.exercises import cli, judge, notebook, report, spec, static, trace, wire
from mpkit.exercises.checking import Exercise
from mpkit.exercises.driver import CaseRecord

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))


# --- the wire format ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    torch.randn(3, 4, dtype=torch.float64), torch.tensor(2.5, dtype=torch.bfloat16), torch.empty(0, 3),
    torch.arange(6).reshape(2, 3).T, torch.randn(2, 2, dtype=torch.complex128).conj(), torch.tensor([True, False]),
    (1, 2.5, float("nan"), "x", None, [torch.ones(2, dtype=torch.int32)]), {"a": {"b": torch.zeros(1)}}])
def test_wire_round_trip_is_exact(value):
    blobs = []
    node = json.loads(json.dumps(wire.encode(value, blobs), allow_nan=False))
    back = wire.decode(node, b"".join(blobs), 2**20)
    flat = lambda v: [v] if isinstance(v, torch.Tensor) else [t for x in (v.values() if isinstance(v, dict) else v)  # noqa
                                                               if isinstance(x, (torch.Tensor, tuple, list, dict))
                                                               for t in flat(x)]
    assert type(back) is type(value)
    for a, b in zip(flat(value), flat(back)):
        assert b.dtype == a.dtype and b.shape == a.shape and torch.equal(a.resolve_conj(), b)


def test_wire_refuses_what_it_cannot_carry():
    blobs = []
    node = wire.encode([torch.ones(2).to_sparse(), torch.ones(2).as_subclass(type("T", (torch.Tensor,), {})),
                        object(), 2**70], blobs)
    got = wire.decode(node, b"".join(blobs), 100)
    assert [u.why.split(";")[0] for u in wire.unaccepted(got)] == [
        "a sparse_coo tensor", "a subclass of torch.Tensor", "not a tensor, number, string or container", "too large"]


@pytest.mark.parametrize("node, why", [
    ({"k": "tensor", "dtype": "float64", "shape": [2], "off": 0, "n": 16}, "exceeds"),  # more than the blob
    ({"k": "tensor", "dtype": "float64", "shape": [2**30, 2**30], "off": 0, "n": 8}, "declares"),
    ({"k": "tensor", "dtype": "object", "shape": [1], "off": 0, "n": 8}, "bad tensor header"),
    ({"k": "tensor", "dtype": "float64", "shape": [-1], "off": 0, "n": 8}, "bad tensor header"),
    ({"k": "tensor", "dtype": "float64", "shape": [1], "off": 0, "n": 8, "device": "cuda"}, "declares"),
    ({"k": "pickle", "v": "cos\nsystem"}, "unknown node kind"),
    ({"k": "list", "items": [{"k": "list", "items": []}] * 5000}, "too many"),
    ("just a string", "not an object"),
])
def test_wire_checks_every_header_before_reading(node, why):
    with pytest.raises(wire.WireError, match=why):
        wire.decode(node, b"\0" * 8, 2**20)


def test_wire_size_bound_is_checked_before_any_byte_is_read():
    blobs = []
    node = wire.encode(torch.zeros(1000), blobs)
    with pytest.raises(wire.WireError, match="size bound"):
        wire.decode(node, b"".join(blobs), 3999)
    nested = {"k": "list", "items": []}
    for _ in range(50):
        nested = {"k": "list", "items": [nested]}
    with pytest.raises(wire.WireError):
        wire.decode(nested, b"", 10)


# --- the spec ----------------------------------------------------------------------------------------
def _spec_notebook(tmp_path, banned):
    source = ("def _cases(gen):\n    return [dict(x=torch.randn(3, generator=gen, dtype=torch.float64))]\n\n\n"
              "def _ref(x):\n    return x * 2\n\n\n"
              f"TWICE = Exercise(name='twice', cases=_cases, reference=_ref, banned={banned!r})\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, metadata={"tags": [spec.SPEC_TAG]})])
    path = tmp_path / "98_twice.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_banned_name_that_does_not_resolve_stops_grading(tmp_path):
    path = _spec_notebook(tmp_path, ("torch.autograd.graph._engine_run_backward_v9", "torch.optim.Adam"))
    with pytest.raises(spec.SpecError, match=r"twice: torch.autograd.graph._engine_run_backward_v9.*silently vanish"):
        spec.load_chapter(path)
    ok = spec.load_chapter(_spec_notebook(tmp_path, ("torch.autograd.grad", "torch.optim.Adam")))
    assert {spec.ENGINE, "torch.optim.adam", "torch._fused_adam_"} <= set(ok.banned["twice"])


def test_the_grader_cases_are_secret_and_new_every_run(tmp_path):
    path = _spec_notebook(tmp_path, ())
    a, b = spec.load_chapter(path), spec.load_chapter(path)
    assert not torch.equal(a.cases["twice"][0]["x"], b.cases["twice"][0]["x"])
    seeded = [spec.load_chapter(path, seeds=[5]).cases["twice"][0]["x"] for _ in range(2)]
    assert torch.equal(*seeded)


# --- the static checks -------------------------------------------------------------------------------
def _trees(*sources):
    return [static.python_of(s) for s in sources]


def test_no_solution_or_exercise_notebook_is_flagged():
    for path in NOTEBOOKS:
        nb = notebook.read(notebook.Found(path, path.parent))
        trees = [t for _, s in notebook.runnable(nb) if (t := static.python_of(s)) is not None]
        aliases, _ = static._aliases(trees)
        assert [f for t in trees for f in static.flags(t, aliases)] == [], path.name


@pytest.mark.parametrize("source, flag", [
    ("exec('x = 1')", "exec"), ("eval('1')", "eval"), ("g = globals()", "globals()"),
    ("getattr(torch, 'au' + 'tograd')", "getattr with a computed name"), ("import importlib", "import importlib"),
    ("import threading", "import threading"), ("from concurrent.futures import ThreadPoolExecutor",
                                                "import concurrent.futures"),
    ("torch._C._foo()", "torch._C"), ("torch.ops.aten.add(1, 2)", "torch.ops"), ("torch._fused_adam_()", "_fused_adam_"),
    ("torch.autograd.Variable._execution_engine", "_execution_engine"), ("import sys\nsys.modules['x'] = 1", "sys.modules"),
    ("%%bash\nls", "the magic %bash"), ("def f():\n    !ls", "a shell command inside a function"),
    ("%time exec('1')", "exec"), ("%%time\nimport ctypes", "import ctypes"), ("from sys import setprofile as s", "sys.setprofile"),
    ("import os\ngetattr(os, 'system')('ls')", "os.system"), ("getattr(torch, '_fused_adam_')", "_fused_adam_"),
])
def test_obfuscation_is_flagged(source, flag):
    (tree,) = _trees(source)
    assert flag in static.flags(tree, static._aliases([tree])[0])


@pytest.mark.parametrize("source", ["import sys\nif 'google.colab' in sys.modules:\n    %pip install -q x",
                                    "!pip install x", "%matplotlib inline", "getattr(x, 'shape')", "y = x.__class__"])
def test_ordinary_code_is_not_flagged(source):
    (tree,) = _trees(source)
    assert static.flags(tree, static._aliases([tree])[0]) == []


def test_a_cell_too_deep_to_parse_is_reported():
    with pytest.raises(static.Unparseable):
        static.python_of("x = " + "-" * 100_000 + "1")
    assert static.python_of("def f(:") is None  # a syntax error: the cell cannot run either


def test_static_check_follows_aliases_and_helpers():
    trees = _trees("import torch.optim as o\nfrom torch.autograd import grad as g",
                   "def helper(x):\n    return g(x.sum(), x)\n\ndef f(x, grad):\n    return helper(x) + grad",
                   "def h(theta):\n    return o.Adam([theta])", "def k(loss):\n    loss.backward()")
    assert static.banned_in(trees, "f", ["torch.autograd.grad"]) == ["torch.autograd.grad"]
    assert static.banned_in(trees, "h", ["torch.optim.Adam"]) == ["torch.optim.Adam"]
    assert static.banned_in(trees, "k", ["torch.Tensor.backward"]) == ["torch.Tensor.backward"]
    assert static.banned_in(_trees("def f(grad):\n    return grad * 2"), "f", ["torch.autograd.grad"]) == []
    literal = _trees("import torch\ndef f(x):\n    return getattr(torch.autograd, 'grad')(x, x)")
    assert static.banned_in(literal, "f", ["torch.autograd.grad"]) == ["torch.autograd.grad"]


def test_a_renamed_copy_of_the_reference_is_recognised():
    ns = {}
    exec("def _ref(x, n):\n    'the reference'\n    return (x * 2).sum() + n", ns)  # noqa: S102
    prints = {trace.fingerprint(ns["_ref"].__code__)}
    copy = "def mine(y, k):\n    return (y * 2).sum() + k\n\ndef f(x):\n    return mine(x, 1)"
    assert static.copies_reference(_trees(copy), "f", prints, []) == ["mine"]
    assert static.copies_reference(_trees("def f(x):\n    return (x * 3).sum()"), "f", prints, []) == []
    assert static.copies_reference(_trees("def f(x):\n    return _ref(x, 1)"), "f", set(), ["_ref"]) == ["_ref"]


# --- reading submissions -----------------------------------------------------------------------------
@pytest.mark.parametrize("data, why", [
    (b"\xff\xfe", "not UTF-8"), (b'{"cells": [', "JSON error"), (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"cells": [], "nbformat": 3}', "format 3"), (b'{"nbformat": 4}', "no list of cells"),
    (b'{"nbformat": 4, "cells": [{"cell_type": "code", "source": 42}]}', "not text"),
    (b'{"nbformat": 4, "cells": [17]}', "cell 1 is not a cell"),
])
def test_malformed_notebooks_are_invalid_not_fatal(tmp_path, data, why):
    path = tmp_path / "x.ipynb"
    path.write_bytes(data)
    with pytest.raises(notebook.Invalid, match=why):
        notebook.read(notebook.Found(path, tmp_path))


def test_tags_that_are_not_a_list_are_ignored(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "cells": [
        {"cell_type": "code", "source": ["a = ", "1"], "metadata": {"tags": None}},
        {"cell_type": "code", "source": "b = 2", "metadata": {"tags": [3, "exercise-spec"]}}]}))
    nb = notebook.read(notebook.Found(path, tmp_path))
    assert notebook.runnable(nb) == [(0, "a = 1")]


def test_collect_does_not_follow_links_out_of_the_folder(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "outside.ipynb").write_text("{}")
    (tmp_path / "in" / "a.ipynb").write_text("{}")
    (tmp_path / "in" / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    (tmp_path / "in" / "inner.ipynb").symlink_to(tmp_path / "in" / "a.ipynb")
    (tmp_path / "in" / "folder").symlink_to(tmp_path, target_is_directory=True)
    found = {f.path.name: f.refused for f in notebook.collect([tmp_path / "in"])}
    assert found == {"a.ipynb": "", "inner.ipynb": "", "link.ipynb": found["link.ipynb"]}
    assert "outside the submission folder" in found["link.ipynb"]


# --- the judge ---------------------------------------------------------------------------------------
EX = Exercise(name="f", cases=lambda g: [], reference=lambda x: x)


def test_judge_nan_must_sit_where_nan_is_expected():
    nan = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    ok = judge.judge_case(EX, CaseRecord(out=nan.clone(), after={"x": nan.clone()}), {"x": nan.clone()}, nan)
    assert ok.kind == "ok"
    bad = judge.judge_case(EX, CaseRecord(out=torch.tensor([1.0, 5.0], dtype=torch.float64), after={"x": nan.clone()}),
                           {"x": nan.clone()}, nan)
    assert bad.kind == "failed" and bad.problems[0].symptom == "nan"


def test_judge_names_inplace_changes_aliases_and_unaccepted_results():
    x = torch.ones(2, dtype=torch.float64)
    v = judge.judge_case(EX, CaseRecord(out=x * 2, after={"x": x * 3}, aliases=["output shares memory with 'x'"]),
                         {"x": x}, x * 2)
    assert [p.symptom for p in v.problems] == ["inplace", "alias"]
    u = judge.judge_case(EX, CaseRecord(out=wire.Unaccepted("Yes", "not a tensor"), after={"x": x}), {"x": x}, x)
    assert "does not accept the result, a Yes" in u.problems[0].text


# --- the tracer (in this process) ----------------------------------------------------------------------
def test_the_tracer_sees_banned_python_and_c_calls_and_the_reference():
    marks, missing = trace.markers([spec.ENGINE, "torch.conv2d"])
    assert missing == []

    def autograd(x):
        x = x.clone().requires_grad_()
        (x * x).sum().backward()
        return x.grad

    def ref(x):
        return x + 1

    for fn, banned, prints, label in [(autograd, {spec.ENGINE}, set(), spec.ENGINE),
                                      (lambda x: torch.conv2d(x[None, None], x[None, None]), {"torch.conv2d"}, set(),
                                       "torch.conv2d"),
                                      (ref, set(), {trace.fingerprint(ref.__code__)}, trace.REFERENCE)]:
        hits = []
        stop = trace.watch(marks, banned, prints, hits)
        with pytest.raises(trace.Banned):
            fn(torch.ones(3, 3))
        assert stop() is False and hits == [label]


# --- reports -----------------------------------------------------------------------------------------
def test_clean_makes_any_string_printable():
    assert report.clean("a\ud800b\x1b[2J\u202ec") == "a\\ud800b\\u001b[2J\\u202ec"
    assert report.clean(os.fsdecode(b"caf\xe9")).encode("ascii", "strict")
    assert len(report.clean("x" * 5000, 100)) == 100


def test_write_atomic_leaves_no_partial_file(tmp_path):
    path = tmp_path / "r.json"
    report.write_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --- the command line: what stops a run before anything is graded (exit status 2) ----------------------
def test_usage_errors_exit_2(tmp_path, capsys):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "b.ipynb").write_text("{}")
    for argv, phrase in [(["grade", str(tmp_path / "missing.ipynb")], "no such file or folder"),
                         (["grade", str(tmp_path / "empty")], "no such file or folder"),
                         (["grade", str(tmp_path)], "pass --chapter NAME"),
                         (["grade", str(tmp_path), "--chapter", "01_neural_networks", "--json",
                           str(tmp_path / "no" / "r.json")], "is not a folder")]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2 and phrase in capsys.readouterr().err, argv
    assert cli.main(["grade", str(tmp_path), "--chapter", "01_neural_networks", "--isolation", "none",
                     "--solutions", str(ROOT / "solutions")]) == 2
    assert "--allow-unisolated" in capsys.readouterr().err
    specs = tmp_path / "specs"
    specs.mkdir()
    _spec_notebook(specs, ("torch.not_a_function",))
    assert cli.main(["grade", str(tmp_path / "a.ipynb"), "--chapter", "98_twice", "--solutions", str(specs)]) == 2
    assert "torch.not_a_function" in capsys.readouterr().err


def test_importing_mpkit_loads_no_kernel_or_sandbox_machinery():
    import subprocess
    import sys
    code = ("import sys, mpkit, mpkit.exercises; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('nbclient', 'jupyter_client', 'zmq', 'IPython', 'ipykernel') or m.startswith('mpkit.exercises.grading'))"
            "; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_inside_the_runner_fork_hooks_threads_and_builtins_are_watched():
    import subprocess
    import sys
    code = """
import builtins, os, threading, time
from mpkit.exercises import _inside
_inside.guard()
original = len
builtins.len = lambda x: 0
_inside.restore_builtins()
assert builtins.len is original
assert _inside.intruders() == ""
os.register_at_fork(after_in_child=lambda: None)
assert _inside.intruders() == "fork hook", _inside.HOOKS
_inside.HOOKS.clear()
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
assert _inside.intruders() == "thread"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
