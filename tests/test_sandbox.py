"""What a submission sees from inside its sandbox, asked by the submission itself.

A small spec (written here, in a temporary spec folder) defines one exercise per property of the
sandbox; each expects ``tensor(1.)``. The submitted functions check their property from inside and
return 1 where it holds, so the grader's scores say exactly which properties hold. Without a sandbox
the same notebook shows what the isolation adds; self-grading a single notebook that way still works.
"""
import socket
import textwrap
from pathlib import Path

import nbformat
import pytest

from mpkit.exercises import grading, isolation
from mpkit.exercises.spec import SPEC_TAG

ROOT = Path(__file__).resolve().parents[1]
PROPERTIES = {  # name: an expression, inside the submitted function, that is true when the property holds
    "not root": "os.getuid() != 0 and os.geteuid() != 0",
    "own PID namespace": "len([p for p in os.listdir('/proc') if p.isdigit()]) < 20",
    "no network": "_fails(lambda: socket.create_connection(('127.0.0.1', int(port)), timeout=2))",
    "solutions hidden": f"not os.path.exists('{ROOT}/solutions')",
    "repository hidden": f"not os.path.exists('{ROOT}/README.md')",
    "venv read-only": "not os.access(sysconfig.get_paths()['purelib'], os.W_OK)",  # asked, not tried: without a
    "mpkit read-only": "not os.access(os.path.dirname(mp.__file__), os.W_OK)",      # sandbox a write would succeed
    "grader's files hidden": "not any(p.startswith('mpkit-grade') for p in os.listdir('/tmp'))",
    "/tmp capped": "_fails(lambda: [_write_big(f'/tmp/big{i}', 200 * 2**20) for i in range(3)])",
    "file size capped": "_fails(lambda: _write_big('/tmp/one', 100 * 2**20))",
    "address space capped": "resource.getrlimit(resource.RLIMIT_AS)[1] != resource.RLIM_INFINITY",
    "own hostname": "socket.gethostname() == 'sandbox'",
}
NAMES = {f"p{k}": name for k, name in enumerate(PROPERTIES)}
SPEC = "\n".join(f"{fn.upper()} = Exercise(name={fn!r}, cases=lambda gen: [dict(port=torch.tensor(PORT))], "
                 "reference=lambda port: torch.tensor(1.0), rtol=0, atol=0)" for fn in NAMES)
HELPERS = textwrap.dedent("""
    import os, resource, shutil, socket, sysconfig


    def _fails(f):
        try:
            f()
            return False
        except Exception:
            return True


    def _write_big(path, size):
        try:
            with open(path, "wb") as f:
                for _ in range(size // 2**20):
                    f.write(bytes(2**20))
        finally:
            if os.path.exists(path):
                os.remove(path)
""")


def _notebooks(tmp, port):
    specs = tmp / "specs"
    specs.mkdir()
    spec = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SPEC.replace("PORT", str(port)),
                                                                     metadata={"tags": [SPEC_TAG]})])
    nbformat.write(spec, specs / "99_probe.ipynb")
    probes = "\n\n".join(f"def {fn}(port):\n    return torch.tensor(float({PROPERTIES[name]}))"
                          for fn, name in NAMES.items())
    sub = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\nimport mpkit as mp"),
                                          nbformat.v4.new_code_cell(HELPERS), nbformat.v4.new_code_cell(probes)])
    sub.metadata["mpkit"] = {"generated_from": "solutions/99_probe.ipynb"}
    nbformat.write(sub, tmp / "99_probe.ipynb")
    return specs, tmp / "99_probe.ipynb"


@pytest.fixture(scope="module")
def listening():
    """A TCP port the host listens on: a sandbox must not reach it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _holding(sub):
    return {NAMES[r.name]: r.status == "passed" for r in sub.results}


@pytest.mark.skipif(isolation.detect().kind != "bwrap", reason="bubblewrap is not available here (make bubblewrap)")
def test_inside_the_sandbox_every_property_holds(tmp_path, listening):
    specs, nb = _notebooks(tmp_path, listening)
    (sub,) = grading.grade([nb], solutions=specs, chapter="99_probe", isolation="bwrap",
                           limits=grading.Limits(memory=2 * 2**30, tmp_size=256 * 2**20, file_size=64 * 2**20))
    assert sub.status == "graded", sub.error
    assert _holding(sub) == dict.fromkeys(PROPERTIES, True), [(r.name, r.feedback) for r in sub.results]


def test_without_a_sandbox_one_notebook_still_grades_and_says_so(tmp_path, listening):
    specs, nb = _notebooks(tmp_path, listening)
    (sub,) = grading.grade([nb], solutions=specs, chapter="99_probe", isolation="none")
    assert sub.status == "graded", sub.error
    held = _holding(sub)
    assert not any(held[p] for p in ("no network", "solutions hidden", "repository hidden", "own hostname")), held
    with pytest.raises(grading.Refused, match="--allow-unisolated"):
        grading.grade([nb, nb], solutions=specs, chapter="99_probe", isolation="none")
