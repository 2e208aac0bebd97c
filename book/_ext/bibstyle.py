"""Sphinx extension: the bibliography is labelled the way the chapters cite, author and year.

Citations use sphinxcontrib-bibtex's ``author_year`` reference style ("Kingma and Ba, 2015",
"Rumelhart et al., 1986"); pybtex's default labels for the bibliography are alphabetic ("[KB15]"),
so a reader could not match one to the other. The formatting style ``mp_author_year`` below is pybtex's
``unsrt`` entry format with labels built by the same rule as the citations (one author: the last name;
two: both joined by "and"; more: the first and "et al."; then ", year"; "a", "b" … for equal labels),
sorted by author, year and title. ``_config.yml`` selects it with ``bibtex_default_style``.
"""
from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as Unsrt
from pybtex.style.labels import BaseLabelStyle


def _last(person) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [self.format_label(e) for e in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + chr(ord("a") + seen[label])
                seen[label] += 1

    def format_label(self, entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_last(p) for p in people]
        who = (names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2
               else f"{names[0]} et al." if names else entry.key)
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(Unsrt):
    default_label_style = "mp_author_year"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "mp_author_year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "mp_author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
