"""Sphinx extension: the formula sheet, generated from the chapter notebooks at build time.

The page ``book/formula_sheet.md`` holds the marker ``<!-- formula-sheet -->``; at build time it becomes,
per chapter (``notebooks/NN_topic.ipynb``, in file order), every labelled display equation
(``$$ … $$ (eq-name)``, also inside dropdowns, or a ``{math}`` directive with ``:label:``) in the order of
the chapter, under the heading it stands under. Each entry links to its derivation (the equation in the
chapter page) and to the code cells that check it: the cells with a comment naming the label,
``… # (eq-name)``, which this extension gives the anchors ``check-eq-name``, ``check-eq-name-2`` … (on the
page of the chapter that derives the equation only: an anchor is a book-wide name, and a tag of another
chapter's equation, such as chapter 9's of chapter 3's ``eq-tconv-size``, must not capture the link).
Entries that an erratum corrects (``labels:`` in ``book/errata/NN.yml``) are marked with its kind and
sources and name the correction, linked to the entry on the errata page (anchors ``errata-N-k``, the k-th
entry of chapter N, added here too). An equation listed in ``book/formula_allowance/NN.yml`` (a definition
with nothing to compute, with a one-line reason) is shown as a definition. A new chapter appears without any
edit. The print layout (A4, two columns) is ``book/_static/formula_sheet.css``; ``make book`` prints the page
to ``formula-sheet.pdf`` beside it.

The same parse (``chapters``) backs the label contract tested in ``tests/test_formula_sheet.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform

import errata

MARKER = "<!-- formula-sheet -->"
PAGE = "book/formula_sheet"
CSS = "formula_sheet.css"          # book/_static/formula_sheet.css: screen and print (A4, columns) layout
JS = "formula_sheet.js"            # book/_static/formula_sheet.js: wide equations shrink to fit their column
TAG = re.compile(r"\((eq-[A-Za-z0-9_.:-]+)\)")
NOT_MARKDOWN = {"{code-cell}", "{code}", "{code-block}", "{literalinclude}", "{math}", "{raw}", "{eval-rst}"}


@dataclass
class Equation:
    """One labelled display equation: its TeX, the headings above it (outermost first), its cell."""
    label: str
    tex: str
    headings: tuple[tuple[int, str], ...]
    cell: int


@dataclass
class Chapter:
    """A chapter notebook: its equations in order and, per label, the code cells that tag it."""
    number: int
    stem: str
    title: str
    equations: list[Equation] = field(default_factory=list)
    checks: dict[str, list[int]] = field(default_factory=dict)   # label -> code-cell indices, in order


def _parser(root: Path):
    """MyST's markdown parser with the extensions that ``_config.yml`` enables (dollarmath: labelled displays)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = root / "_config.yml"
    parse = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("parse", {}) if config.exists() else {}
    extensions = set(parse.get("myst_enable_extensions") or ["dollarmath", "amsmath", "colon_fence"])
    return create_md_parser(MdParserConfig(enable_extensions=extensions), RendererHTML)


def _walk(md, text: str, headings: list[tuple[int, str]], cell: int, out: list[Equation]) -> None:
    """Append the labelled equations of MyST ``text`` to ``out``; ``headings`` is updated in place."""
    for tok in md.parse(text):
        if tok.type == "inline" and headings and headings[-1][1] is None:
            headings[-1] = (headings[-1][0], tok.content.strip())
        elif tok.type == "heading_open":
            level = int(tok.tag[1])
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, None))
        elif tok.type == "math_block_label":
            out.append(Equation(tok.info.strip(), tok.content.strip(), tuple(headings), cell))
        elif tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            name = tok.info.split()[0]
            lines = tok.content.splitlines()
            options = [ln for ln in lines if re.match(r"\s*:[\w-]+:", ln)]
            body = "\n".join(lines[len(options):] if lines[:len(options)] == options else lines)
            if name == "{math}":
                label = next((ln.split(":", 2)[2].strip() for ln in options if ln.strip().startswith(":label:")), None)
                if label:
                    out.append(Equation(label, body.strip(), tuple(headings), cell))
            elif name not in NOT_MARKDOWN:
                _walk(md, body, list(headings), cell, out)   # a dropdown's headings stay inside it


def tags(line: str) -> list[str]:
    """The ``(eq-…)`` labels named in the comment of one line of Python (after its first ``#``)."""
    return TAG.findall(line.split("#", 1)[1]) if "#" in line else []


def read_chapter(path: Path, md=None) -> Chapter:
    """Parse ``notebooks/NN_topic.ipynb`` (no execution): title, labelled equations, tagged code cells."""
    md = md or _parser(path.parents[1])
    nb = nbformat.read(path, as_version=4)
    ch = Chapter(int(path.name[:2]), path.stem, path.stem)
    headings: list[tuple[int, str]] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            _walk(md, cell.source, headings, i, ch.equations)
        elif cell.cell_type == "code":
            for label in dict.fromkeys(t for ln in cell.source.splitlines() for t in tags(ln)):
                ch.checks.setdefault(label, []).append(i)
    ch.title = re.sub(r"^\d+\.?\s*", "", _first_title(nb) or path.stem)   # "# 1. Neural networks"
    return ch


def _first_title(nb) -> str | None:
    for cell in nb.cells:
        m = cell.cell_type == "markdown" and re.search(r"^#\s+(.+)$", cell.source, re.M)
        if m:
            return m.group(1).strip()
    return None


def chapters(root: Path) -> list[Chapter]:
    """Every chapter notebook of the book, in order."""
    md = _parser(root)
    return [read_chapter(p, md) for p in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def corrections(root: Path) -> dict[str, list[tuple[str, dict]]]:
    """label -> [(anchor of the errata entry, entry), …] for every erratum that names the label."""
    out: dict[str, list[tuple[str, dict]]] = {}
    for ch in errata.load(root / "book" / "errata"):
        for k, e in enumerate(ch["entries"], 1):
            for label in e["labels"]:
                out.setdefault(label, []).append((f"errata-{ch['chapter']}-{k}", e))
    return out


def definitions(root: Path) -> dict[str, str]:
    """label -> reason for the labelled equations with nothing to compute, from ``book/formula_allowance/NN.yml``."""
    out: dict[str, str] = {}
    for path in sorted((root / "book" / "formula_allowance").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if data.get("chapter") != int(path.stem) or not isinstance(data.get("definitions") or {}, dict):
            raise ValueError(f"{path}: needs `chapter: {int(path.stem)}` and `definitions:` mapping each label to a reason")
        out.update(data.get("definitions") or {})
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def entry(ch: Chapter, eq: Equation, fixes: list[tuple[str, dict]], shown: dict[str, str], definition: bool) -> list[str]:
    """The MyST lines of one entry: the equation, its links, and the errata that correct it. An erratum
    already written out under an earlier entry (``shown``: its anchor -> that entry's label) is referred to."""
    kinds = {e["kind"] for _, e in fixes}
    classes = "mp-sheet-entry" + "".join(f" mp-sheet-{k}" for k in sorted(kinds))
    cells = ch.checks.get(eq.label, [])
    checks = " ".join(f"{{ref}}`{'check' if n == 0 else n + 1} <{anchor(eq.label, n)}>`" for n in range(len(cells)))
    checks = checks or ("*definition*" if definition else "")
    out = [f"::::{{container}} {classes}", "$$", eq.tex, "$$", "",
           f"{{eq}}`{eq.label}` {checks}".rstrip(), ""]
    for target, e in fixes:
        mark = f"{errata.KINDS[e['kind']]} *{', '.join(e['sources'])}*"
        if target in shown:
            text = f"{mark} — the same erratum as {{eq}}`{shown[target]}` ({{ref}}`erratum <{target}>`)"
        else:
            shown[target] = eq.label
            text = (f"{mark} — **as printed:** {_one_line(e['printed'])}; **correct:** {_one_line(e['correct'])} "
                    f"({{ref}}`erratum <{target}>`)")
        out += [":::{container} mp-sheet-fix", text, ":::", ""]
    return out + ["::::", ""]


def anchor(label: str, n: int) -> str:
    """The anchor of the n-th (0-based) code cell that tags ``label``."""
    return f"check-{label}" + (f"-{n + 1}" if n else "")


def check_targets(defined: set[str], cells: list[str]) -> list[list[str]]:
    """Per code cell of a chapter (its source, in page order), the anchors it gets: ``anchor(label, n)`` for the
    n-th cell that tags ``label``, for the labels the chapter itself defines (``defined``). Anchors are names
    shared by the whole book: a tag of another chapter's equation gets none, or the sheet's link to the
    deriving chapter's check would resolve to this page (two targets of one name: Sphinx keeps the last)."""
    seen: dict[str, int] = {}
    out = []
    for source in cells:
        names = []
        for label in dict.fromkeys(t for ln in source.splitlines() for t in tags(ln)):
            if label in defined:
                names.append(anchor(label, seen.get(label, 0)))
                seen[label] = seen.get(label, 0) + 1
        out.append(names)
    return out


def markdown(root: Path) -> str:
    """The MyST text of the sheet: a heading per chapter, its headings with equations, an entry per equation."""
    fixes, written, defined = corrections(root), {}, definitions(root)
    out = []
    for ch in chapters(root):
        out += [f"## Chapter {ch.number} — {ch.title}", ""]
        above: tuple = ()                                   # the headings already written for this chapter
        for eq in ch.equations:
            path = tuple(h for h in eq.headings if h[0] >= 2)
            same = next((i for i, (a, b) in enumerate(zip(above, path)) if a != b), min(len(above), len(path)))
            for level, title in path[same:]:
                out += [f"{'#' * min(level + 1, 6)} {title}", ""]
            above = path
            out += entry(ch, eq, fixes.get(eq.label, []), written, eq.label in defined)
    return "\n".join(out)


def _source_read(app, docname, source):
    if docname == PAGE and MARKER in source[0]:
        root = Path(app.srcdir)
        for path in [*(root / "notebooks").glob("*.ipynb"), *(root / "book" / "errata").glob("*.yml"),
                     *(root / "book" / "formula_allowance").glob("*.yml")]:
            app.env.note_dependency(str(path))
        source[0] = source[0].replace(MARKER, markdown(root))


def _target(document, node: nodes.Element, name: str) -> None:
    """An explicit target ``name`` at the start of ``node`` (a ``{ref}`` to it lands there)."""
    target = nodes.target("", "", ids=[name], names=[name])
    node.insert(sum(isinstance(c, nodes.target) for c in node.children), target)   # after the earlier ones
    document.note_explicit_target(target)


class CheckAnchors(SphinxTransform):
    """Anchors on the code cells of a chapter that tag its labels: ``check-eq-name`` (then ``-2``, ``-3`` …,
    see :func:`check_targets`) and on the errata page's entries: ``errata-N-k``. Before the domains collect
    targets (priority 850)."""

    default_priority = 840

    def apply(self, **kwargs) -> None:
        if self.env.docname == "book/errata":
            return self._errata()
        path = Path(self.env.srcdir) / f"{self.env.docname}.ipynb"
        if not self.env.docname.startswith("notebooks/") or not path.exists():
            return
        defined = {eq.label for eq in read_chapter(path).equations}   # the parse the sheet's entries come from
        cells = [cell for cell in self.document.findall(nodes.container) if cell.get("nb_element") == "cell_code"]
        sources = ["\n".join(n.astext() for n in cell.findall(nodes.literal_block)
                             if n.parent.get("nb_element") == "cell_code_source") for cell in cells]
        for cell, names in zip(cells, check_targets(defined, sources)):
            for name in names:
                _target(self.document, cell, name)

    def _errata(self) -> None:
        root = Path(self.env.srcdir)
        for ch in errata.load(root / "book" / "errata"):
            section = next((s for s in self.document.findall(nodes.section)
                            if s[0].astext().startswith(f"Chapter {ch['chapter']} ")), None)
            items = list(section.findall(nodes.definition_list_item)) if section else []
            kinds = [errata.KINDS[e["kind"]] for e in ch["entries"]]
            if [i[0].astext()[:1] for i in items] != kinds:
                raise ExtensionError(f"formula_sheet: the errata page's chapter {ch['chapter']} does not list the "
                                     f"{len(kinds)} entries of {ch['path'].name} in order: has book/_ext/errata.py "
                                     "changed its layout?")
            for k, item in enumerate(items, 1):
                _target(self.document, item[0], f"errata-{ch['chapter']}-{k}")   # in the entry's term


def _page_context(app, pagename, templatename, context, doctree):
    if pagename == PAGE:
        app.builder.add_css_file(CSS)   # this page only (Sphinx restores the lists after each page)
        app.builder.add_js_file(JS)  # a plain script: it must run before MathJax (deferred) reads its configuration


def setup(app):
    app.connect("source-read", _source_read)
    app.add_transform(CheckAnchors)
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
