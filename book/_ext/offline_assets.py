"""Sphinx extension: keep the built site free of CDN scripts.

Plotly's ``notebook`` renderer (how the build embeds figures, with plotly.js inlined) also writes
``<script src="https://cdnjs.cloudflare.com/.../mathjax/...">`` into every figure's HTML; plotly 7
hard-codes it. The page already loads MathJax from ``_static`` (sphinx-mathjax-offline), so the tag
is removed here: offline it would only fail, online it would load a second MathJax.
"""
import re

PLOTLY_CDN_MATHJAX = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"></script>')


def _strip_cdn_mathjax(app, pagename, templatename, context, doctree):
    if "body" in context:
        context["body"] = PLOTLY_CDN_MATHJAX.sub("", context["body"])


def setup(app):
    app.connect("html-page-context", _strip_cdn_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
