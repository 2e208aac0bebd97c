"""The equation labels are a contract, and the formula sheet keeps it (no build, no execution: notebooks are
read with nbformat and MyST's own markdown parser).

- every labelled display equation of a chapter is tagged ``# (eq-…)`` on a code line of that chapter that
  implements or checks it, or is listed, with a one-line reason, as a definition with nothing to compute
  in ``book/formula_allowance/NN.yml`` (and nothing else is listed there);
- every ``# (eq-…)`` tag names an existing label; labels are unique across the book; every errata
  ``labels:`` entry names an equation of its chapter;
- the sheet (``book/_ext/formula_sheet.py``) contains every label, in chapter order, with a link to each
  checking cell, and marks every equation an erratum corrects.

Which labels exist is read twice, independently: by the extension's MyST parse, and here by a plain search
of the notebooks' markdown for ``$$ (eq-…)`` and ``:label: eq-…``; the two must agree. The rendered page and
the PDF are checked in ``tests/test_book.py``.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import formula_sheet  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = {ch.stem: ch for ch in formula_sheet.chapters(ROOT)}
DEFINITIONS = formula_sheet.definitions(ROOT)
# The oracle: a labelled display (`$$` closing a display, then the label) or a {math} directive's label.
PLAIN_LABEL = re.compile(r"\$\$[ \t]*\((eq-[^)\s]+)\)|^[ \t]*:label:[ \t]*(eq-\S+)", re.M)
PLAIN_TAG = re.compile(r"#[^\n]*")  # a comment, to the end of the line


def _plain_labels(path: Path) -> list[str]:
    cells = nbformat.read(path, as_version=4).cells
    return [a or b for c in cells if c.cell_type == "markdown" for a, b in PLAIN_LABEL.findall(c.source)]


def _plain_tags(path: Path) -> list[tuple[int, str]]:
    """(cell index, label) for each `(eq-…)` in a comment of a code cell."""
    cells = nbformat.read(path, as_version=4).cells
    return [(i, t) for i, c in enumerate(cells) if c.cell_type == "code"
            for comment in PLAIN_TAG.findall(c.source) for t in re.findall(r"\((eq-[^)\s]+)\)", comment)]


def _allowance(stem: str) -> dict[str, str]:
    path = ROOT / "book" / "formula_allowance" / f"{stem[:2]}.yml"
    return (yaml.safe_load(path.read_text()) or {}).get("definitions") or {} if path.exists() else {}


def test_there_are_labelled_equations():
    assert NOTEBOOKS and all(CHAPTERS[p.stem].equations for p in NOTEBOOKS), "a chapter without labelled equations"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_sheet_parser_finds_every_label_a_plain_search_finds(path):
    found = [e.label for e in CHAPTERS[path.stem].equations]
    assert found == _plain_labels(path), "the MyST parse and the plain search disagree on the labels (or their order)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_labelled_equation_is_tagged_in_code_or_a_definition(path):
    tagged = {t for _, t in _plain_tags(path)}
    allowed = _allowance(path.stem)
    missing = [lab for lab in _plain_labels(path) if lab not in tagged and lab not in allowed]
    assert not missing, (f"{len(missing)} labelled equations of {path.name} are tagged on no code line: {missing}. "
                         "Add `# (eq-…)` to the line that implements or checks each, or, for a definition with "
                         f"nothing to compute, list it with a one-line reason in book/formula_allowance/{path.stem[:2]}.yml")


@pytest.mark.parametrize("path", sorted((ROOT / "book" / "formula_allowance").glob("*.yml")), ids=lambda p: p.name)
def test_allowance_lists_untagged_labels_of_its_chapter_with_a_reason(path):
    data = yaml.safe_load(path.read_text())
    stems = [p.stem for p in NOTEBOOKS if p.name[:2] == path.stem]
    assert data["chapter"] == int(path.stem) and len(stems) == 1, f"{path.name} names no chapter notebook"
    labels, tagged = _plain_labels(ROOT / "notebooks" / f"{stems[0]}.ipynb"), {t for _, t in _plain_tags(ROOT / "notebooks" / f"{stems[0]}.ipynb")}
    for label, reason in data["definitions"].items():
        assert label in labels, f"{label} is not a labelled equation of {stems[0]}"
        assert label not in tagged, f"{label} is tagged in code: drop it from {path.name}"
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason.strip(), f"{label}: give a one-line reason"


def test_every_tag_names_an_existing_label():
    labels = {lab for p in NOTEBOOKS for lab in _plain_labels(p)}
    unknown = [f"{p.parent.name}/{p.name}, cell {i}: {t}" for folder in ("notebooks", "solutions", "exercises")
               for p in sorted((ROOT / folder).glob("*.ipynb")) for i, t in _plain_tags(p) if t not in labels]
    assert not unknown, "tags that name no labelled equation:\n" + "\n".join(unknown)


def test_labels_are_unique_across_the_book():
    pages = [(p.name, re.findall(r"\$\$[ \t]*\((eq-[^)\s]+)\)", p.read_text())) for p in (ROOT / "book").glob("*.md")]
    counts = Counter(lab for _, labs in [(p.name, _plain_labels(p)) for p in NOTEBOOKS] + pages for lab in labs)
    assert not [lab for lab, n in counts.items() if n > 1], f"labels used twice: {[lab for lab, n in counts.items() if n > 1]}"


def test_errata_labels_name_equations_of_their_chapter():
    for path in sorted((ROOT / "book" / "errata").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        stem = next(p for p in NOTEBOOKS if int(p.name[:2]) == data["chapter"])
        labels = set(_plain_labels(stem))
        bad = [lab for e in data["entries"] for lab in e["labels"] if lab not in labels]
        assert not bad, f"{path.name}: labels that are no equation of {stem.name}: {bad}"


@pytest.fixture(scope="module")
def sheet() -> str:
    return formula_sheet.markdown(ROOT)


def test_sheet_has_every_label_in_chapter_order_with_its_checks(sheet):
    entries = [m for m in re.findall(r"^\{eq\}`(eq-[^`]+)`", sheet, re.M)]
    assert entries == [lab for p in NOTEBOOKS for lab in _plain_labels(p)]
    for path in NOTEBOOKS:
        ch = CHAPTERS[path.stem]
        assert f"## Chapter {ch.number} — {ch.title}\n" in sheet
        cells = Counter()
        for cell, label in dict.fromkeys(_plain_tags(path)):   # a cell counts once per label
            cells[label] += 1
        for label in _plain_labels(path):
            line = re.search(rf"^\{{eq\}}`{re.escape(label)}`(.*)$", sheet, re.M).group(1)
            refs = re.findall(r"<(check-[^>]+)>", line)
            assert refs == [formula_sheet.anchor(label, n) for n in range(cells[label])], f"{label}: {line}"
            assert ("*definition*" in line) == (label in _allowance(path.stem) and not cells[label])


def test_sheet_marks_every_corrected_equation(sheet):
    blocks = {m.group(1): m.group(0) for m in re.finditer(r"^::::\{container\}[^\n]*\n\$\$\n.*?\n\$\$\n\n\{eq\}`(eq-[^`]+)`.*?^::::$",
                                                           sheet, re.M | re.S)}
    marked = 0
    for path in sorted((ROOT / "book" / "errata").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        for k, e in enumerate(data["entries"], 1):
            for label in e["labels"]:
                block = blocks[label]
                assert f"mp-sheet-{e['kind']}" in block.splitlines()[0], f"{label} is not marked {e['kind']}"
                assert f"<errata-{data['chapter']}-{k}>" in block, f"{label} does not link to its erratum"
                marked += 1
    assert marked >= 1
    unmarked = [lab for lab, b in blocks.items() if "mp-sheet-fix" in b and "mp-sheet-wrong" not in b
                and "mp-sheet-imprecise" not in b]
    assert not unmarked


def _notebook(path: Path, cells: list) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) if kind == "md" else nbformat.v4.new_code_cell(s)
                                         for kind, s in cells])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_parse_headings_dropdowns_directives_and_tags(tmp_path):
    path = _notebook(tmp_path / "notebooks" / "07_toy.ipynb", [
        ("md", "# 7. Toy models\n\n## 7.1 First\n\n$$\na = b\n$$ (eq-toy-a)\n\n:::{dropdown} Proof\n$$ c = d $$ (eq-toy-c)\n:::"),
        ("code", 'x = 1  # (eq-toy-a)\ns = "(eq-toy-c)"  # a string is no tag\n'),
        ("md", "### A subsection\n\n```{math}\n:label: eq-toy-m\nm = n\n```\n\n## 7.2 Second\n\n$$\ne\n$$ (eq-toy-e)"),
        ("code", "def f():\n    \"\"\"(eq-toy-e) in a docstring is no tag either.\"\"\"\n    # the formula above the line: (eq-toy-m), (eq-toy-e)\n    return 0"),
    ])
    ch = formula_sheet.read_chapter(path)
    assert (ch.number, ch.title) == (7, "Toy models")
    assert [(e.label, e.tex, [h[1] for h in e.headings if h[0] >= 2]) for e in ch.equations] == [
        ("eq-toy-a", "a = b", ["7.1 First"]), ("eq-toy-c", "c = d", ["7.1 First"]),
        ("eq-toy-m", "m = n", ["7.1 First", "A subsection"]), ("eq-toy-e", "e", ["7.2 Second"])]
    assert ch.checks == {"eq-toy-a": [1], "eq-toy-m": [3], "eq-toy-e": [3]}


def test_a_new_chapter_appears_without_any_edit(tmp_path):
    _notebook(tmp_path / "notebooks" / "01_one.ipynb", [("md", "# 1. One\n\n## 1.1 Start\n\n$$\nx\n$$ (eq-one-x)"),
                                                       ("code", "x = 0  # (eq-one-x)")])
    _notebook(tmp_path / "notebooks" / "13_body.ipynb", [("md", "# 13. Body models\n\n## 13.1 SMPL\n\n$$\ny\n$$ (eq-smpl-y)")])
    (tmp_path / "book" / "errata").mkdir(parents=True)
    (tmp_path / "book" / "errata" / "13.yml").write_text(yaml.safe_dump({"chapter": 13, "title": "Body models", "entries": [
        {"kind": "wrong", "sources": ["notes"], "where": "SMPL", "printed": "$-y$", "correct": "$y$",
         "checked": "ch13-smpl", "labels": ["eq-smpl-y"]}]}))
    text = formula_sheet.markdown(tmp_path)
    assert text.index("## Chapter 1 — One") < text.index("### 1.1 Start") < text.index("## Chapter 13 — Body models") \
        < text.index("### 13.1 SMPL")
    assert "{eq}`eq-one-x` {ref}`check <check-eq-one-x>`" in text
    assert "::::{container} mp-sheet-entry mp-sheet-wrong\n$$\ny\n$$" in text and "<errata-13-1>" in text
    assert "{eq}`eq-smpl-y`\n" in text   # neither a check nor a definition: no link (the contract test fails)


def test_check_anchors_are_the_deriving_chapters_only():
    cells = ["x = 1  # (eq-a) (eq-b)", "y = 2  # (eq-a), again\nz = 3  # (eq-a)", "w = 0  # (eq-other-chapter)"]
    assert formula_sheet.check_targets({"eq-a", "eq-b"}, cells) == [["check-eq-a", "check-eq-b"], ["check-eq-a-2"], []]


def test_every_check_the_sheet_links_to_is_one_anchor_of_its_own_chapter():
    """Anchors are book-wide names: one defined on two pages captures the link (chapter 9 tags chapter 3's
    eq-tconv-size). Every anchor the pages get (`check_targets`, as the build's transform computes them) is
    unique across the book, and each check link of the sheet is an anchor of the chapter that derives it."""
    made = Counter()
    for path in NOTEBOOKS:
        ch = CHAPTERS[path.stem]
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        own = {name for names in formula_sheet.check_targets({e.label for e in ch.equations}, code) for name in names}
        made.update(own)
        linked = {formula_sheet.anchor(e.label, n) for e in ch.equations for n in range(len(ch.checks.get(e.label, [])))}
        assert linked == own, f"{path.stem}: sheet links {sorted(linked - own)} without anchors, anchors {sorted(own - linked)} unlinked"
    assert not [name for name, n in made.items() if n > 1], f"anchors on two pages: {[k for k, n in made.items() if n > 1]}"
