"""Static checks of the notebooks: layout, the Colab cell, no stored outputs, exercises present."""
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = CHAPTERS + sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
COLAB_CELL = f'''# Colab only: install the course helper library mpkit (elsewhere it is already installed).
import sys
if "google.colab" in sys.modules:
    %pip install -q "mpkit @ git+{REPO_URL}"'''


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_is_at_least_one_chapter():
    assert CHAPTERS, "notebooks/ holds no chapter"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_layout(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_topic.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = _code(nb)
    assert code[0].source == COLAB_CELL, "the first code cell must be the standard Colab install cell"
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not stored, f"cells {stored} have stored outputs: commit notebooks without outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "start with a title"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_checks_a_solution_and_a_toc_entry(path):
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in _code(nb))
    assert len(re.findall(r"^\s*assert\b|mp\.(?:check\.)?(?:assert_close|grad_check|assert_mc)\(", source, re.M)) >= 10
    assert "QUICK" in source, "the config cell sets values by profile (QUICK)"
    assert (ROOT / "solutions" / path.name).exists(), "every chapter has a solutions notebook"
    toc = (ROOT / "book" / "_toc.yml").read_text()
    assert f"notebooks/{path.stem}" in toc, "the chapter is not in book/_toc.yml"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solutions_have_four_checked_exercises(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    regions = sum(c.source.count("# BEGIN SOLUTION") for c in code)
    specs = [i for i, c in enumerate(code) if "exercise-spec" in c.metadata.get("tags", [])]
    assert regions >= 4 and len(specs) >= 4, f"{regions} answer regions, {len(specs)} exercise specs"
    for i in specs:  # the cell after each spec checks the student's function against it
        assert "mp.exercises.check(" in code[i + 1].source, f"no check cell after spec cell {i}"


def _magics_free(source: str) -> str:
    """A cell's source with IPython's % and ! lines blanked, so that Python's tokenizer reads it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _printed_labels(source: str) -> list[str]:
    """String literals of a code cell that contain an internal equation label (docstrings excepted)."""
    kinds = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}  # f-strings: Python >= 3.12
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type in kinds and re.search(r"\beq-[a-z]", t.string) and not t.string.startswith(('"""', "'''"))]


def test_printed_labels_are_found():
    assert _printed_labels('print("KL (eq-vae-kl) = torch")  # (eq-vae-kl)') == ['"KL (eq-vae-kl) = torch"']
    assert _printed_labels('ax.set(title=f"x {y:.1f} (eq-a-b)")')  # in an f-string too, whichever Python
    assert not _printed_labels('x = f(y)  # (eq-vae-kl)\n"""Docstring (eq-vae-kl)."""')


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_printed_text_names_equations_not_labels(path):
    """A reader sees an equation's number, never its internal label: printed check names, titles and legends
    name the equation; the label stays a `# (eq-label)` comment on the line (the formula sheet finds it)."""
    nb = nbformat.read(path, as_version=4)
    found = [(i, s[:80]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for s in _printed_labels(_magics_free(c.source))]
    assert not found, f"string literals with internal labels (cell, text): {found}"

