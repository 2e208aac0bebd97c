"""Sphinx extension: the exercises overview, generated from ``exercises/*.ipynb``.

The page ``book/exercises.md`` holds the marker ``<!-- exercise-list -->``; at build time it becomes one
entry per exercise notebook, in chapter order: a link to its page, the chapter it belongs to (same file
name in ``notebooks/``), the functions it asks for (the ``name=`` of each ``Exercise`` in its
``exercise-spec`` cells) and a link that opens it on Colab. A new chapter's exercises appear here, and
in the navigation (``book/_toc.yml`` globs ``exercises/*``), without editing either page.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

MARKER = "<!-- exercise-list -->"
NAME = re.compile(r"""Exercise\(\s*name\s*=\s*["']([^"']+)["']""")


def functions(nb_path: Path) -> list[str]:
    """The exercise names defined in the notebook's ``exercise-spec`` cells, in order."""
    nb = nbformat.read(nb_path, as_version=4)
    return [m for c in nb.cells if "exercise-spec" in c.get("metadata", {}).get("tags", [])
            for m in NAME.findall(c.source)]


def colab_url(config, rel_path: str) -> str:
    """The Colab address of a notebook of the repository named in ``_config.yml``."""
    repo = config.html_theme_options.get("repository_url", "").removeprefix("https://github.com/")
    branch = config.html_theme_options.get("repository_branch", "main")
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{rel_path}"


def markdown(root: Path, config) -> str:
    out = []
    for nb in sorted((root / "exercises").glob("*.ipynb")):
        names = ", ".join(f"`{n}`" for n in functions(nb)) or "—"
        chapter = root / "notebooks" / nb.name
        of = f" — for {{doc}}`../notebooks/{nb.stem}`" if chapter.exists() else ""
        out.append(f"- **{{doc}}`../exercises/{nb.stem}`**{of}  \n"
                   f"  write {names}  \n"
                   f"  [open on Colab]({colab_url(config, f'exercises/{nb.name}')})")
    return "\n".join(out) + "\n"


def _source_read(app, docname, source):
    if MARKER in source[0]:
        root = Path(app.srcdir)
        for nb in (root / "exercises").glob("*.ipynb"):
            app.env.note_dependency(str(nb))
        source[0] = source[0].replace(MARKER, markdown(root, app.config))


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
