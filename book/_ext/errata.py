"""Sphinx extension: the errata page is generated from ``book/errata/NN.yml``, one file per chapter.

The page ``book/errata.md`` holds the marker ``<!-- errata-entries -->``; at build time it is replaced by
MyST markdown for every entry of every chapter file, in chapter order. Keeping the entries as data lets
each chapter own its file, lets the formula sheet mark the equations an entry corrects (``labels``), and
keeps the layout in one place.
"""
from __future__ import annotations

from pathlib import Path

import yaml

MARKER = "<!-- errata-entries -->"
KINDS = {"wrong": "✗", "imprecise": "≈"}
FIELDS = {"kind", "sources", "where", "printed", "correct", "checked", "labels"}


def load(folder: Path) -> list[dict]:
    """Every chapter file in ``folder``, checked: ``[{"chapter": 1, "title": ..., "entries": [...]}, ...]``."""
    chapters = []
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for i, e in enumerate(data.get("entries") or []):
            if set(e) != FIELDS or e["kind"] not in KINDS:
                raise ValueError(f"{path}, entry {i + 1}: needs exactly the fields {sorted(FIELDS)} "
                                 f"with kind in {sorted(KINDS)}; got {sorted(e)}")
        chapters.append({**data, "path": path})
    return sorted(chapters, key=lambda c: c["chapter"])


def markdown(chapters: list[dict]) -> str:
    """The MyST text of the errata: a heading per chapter, a definition-list entry per correction."""
    out = []
    for ch in chapters:
        out += [f"## Chapter {ch['chapter']} — {ch['title']}", ""]
        for e in ch["entries"]:
            out += [f"{KINDS[e['kind']]} {', '.join(e['sources'])} — {e['where']}",
                    f": **As printed:** {e['printed'].strip()}",
                    f": **Correct:** {e['correct'].strip()} (checked in {{ref}}`{e['checked']}`)", ""]
    return "\n".join(out)


def _source_read(app, docname, source):
    if MARKER in source[0]:
        folder = Path(app.srcdir) / "book" / "errata"
        for path in folder.glob("*.yml"):
            app.env.note_dependency(str(path))
        source[0] = source[0].replace(MARKER, markdown(load(folder)))


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
