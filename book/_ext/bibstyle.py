"""Sphinx extension: the bibliography is labelled the way the chapters cite, author and year.

Citations use sphinxcontrib-bibtex's ``author_year`` reference style ("Kingma and Ba, 2015",
"Rumelhart et al., 1986"); pybtex's default labels for the bibliography are alphabetic ("[KB15]"),
so a reader could not match one to the other. The formatting style ``mp_author_year`` below is pybtex's
``unsrt`` entry format with labels built by the same rule as the citations (one author: the last name;
two: both joined by "and"; more: the first and "et al."; then ", year"; "a", "b" … for equal labels),
sorted by author, year and title. ``_config.yml`` selects it with ``bibtex_default_style``.

Where two entries get the same label ("Chen et al., 2018a" and "… 2018b"), the citation in the text must
carry the same letter, or the reader finds two "Chen et al., 2018" in the list. sphinxcontrib-bibtex's
``author_year`` referencing style writes the bare year, so this module registers a subclass of it as
``mp_author_year`` (which ``_config.yml`` selects with ``bibtex_reference_style``) whose year is
:func:`year_label`: the year followed by the letter the bibliography's label gave the entry.
"""
from __future__ import annotations

from collections import Counter

from dataclasses import dataclass
from typing import Any

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as Unsrt
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import Node, join, node
from sphinxcontrib.bibtex import plugin as bibtex_plugin
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import ExtraAuthorReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_empty import ExtraEmptyReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_label import ExtraLabelReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join2, post_text, pre_text, reference, year


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


@node
def year_label(children, data: dict[str, Any]) -> Text:
    """The cited entry's year as its bibliography label has it: "2018a" where :class:`AuthorYearLabels` added a
    letter to tell equal labels apart, else the bare year (``data``: sphinxcontrib-bibtex's ``entry`` and
    ``formatted_entry``, the entry as formatted in the bibliography the citation links to)."""
    assert not children
    base, label = AuthorYearLabels().format_label(data["entry"]), data["formatted_entry"].label
    suffix = label[len(base):]
    if not label.startswith(base) or len(suffix) > 1 or (suffix and not suffix.islower()):
        suffix = ""   # a label this module's style did not make: the year alone, as sphinxcontrib-bibtex writes it
    return Text(year.format_data(data), suffix)


@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str) -> Node:   # the parent's template with year_label for year
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[join(sep=self.author_year_sep)[
                self.person.author_or_editor_or_title(full="s" in role_name), year_label]],
            post_text,
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str) -> Node:   # the parent's template with year_label for year
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[self.bracket.left,
                 join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[pre_text, reference[year_label], post_text],
                 self.bracket.right],
        ]


@dataclass
class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name: str) -> Node:
        return reference[year_label]


@dataclass
class AuthorYearReferences(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's ``author_year`` referencing style (``{cite}`` = ``{cite:p}``, ``{cite:t}``,
    ``{cite:year}`` …) with :func:`year_label` wherever it writes the year."""

    def __post_init__(self):
        self.styles.extend([
            _Parenthetical(bracket=self.bracket_parenthetical, person=self.person, author_year_sep=self.author_year_sep,
                           pre_text_sep=self.pre_text_sep, post_text_sep=self.post_text_sep),
            _Textual(bracket=self.bracket_textual, person=self.person, text_reference_sep=self.text_reference_sep,
                     pre_text_sep=self.pre_text_sep, post_text_sep=self.post_text_sep),
            ExtraAuthorReferenceStyle(bracket=self.bracket_author, person=self.person),
            ExtraLabelReferenceStyle(bracket=self.bracket_label),
            _Year(bracket=self.bracket_year),
            ExtraEmptyReferenceStyle(),
        ])
        super(AuthorYearReferenceStyle, self).__post_init__()   # GroupReferenceStyle's: maps role names to styles


def setup(app):
    register_plugin("pybtex.style.labels", "mp_author_year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "mp_author_year", AuthorYearStyle)
    bibtex_plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", "mp_author_year", AuthorYearReferences)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
