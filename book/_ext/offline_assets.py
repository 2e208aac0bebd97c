"""Sphinx extension: a light site that works offline.

- **plotly.js once, from ``_static``, and only as much of it as a page needs.** Plotly's ``notebook``
  renderer (how the build embeds figures) inlines the whole plotly.js (4.8 MB) into the first figure of
  every notebook. Here that inline script becomes a file in ``_static``, which the browser caches across
  pages, and which the page loads only once MathJax has typeset the math in view; then each figure is
  drawn. (Loaded with the page, even deferred, plotly.js is parsed before ``DOMContentLoaded``, which
  MathJax waits for: on a 2-core machine that held the math of chapter 5 back by about 2 s.) A page whose
  traces are all cartesian (scatter, heatmap, bar, contour …) loads plotly's official cartesian bundle of
  the same version (1.5 MB, vendored from npm by ``make vendor``); a page of 3-D traces (mesh3d, scatter3d …)
  and scatters loads its 3-D bundle (1.8 MB); any other page loads the full plotly.js (4.8 MB), written once
  to ``_static/plotly/``. Plotly's CDN MathJax tag is dropped: the page has MathJax.
- **Progress bars without a widget manager.** tqdm's bars are ipywidgets (an HBox of HTML, a progress
  bar and HTML) whose final state the build saved. When every widget of a page is of that kind, it is
  drawn here as plain HTML (styled in ``mp.css`` for light and dark mode) and the page loads neither
  require.js nor the 3.6 MB widget manager; other widgets keep the widget manager, which then finds its
  icon fonts through a ``requirejs.config`` (it looks for them next to its AMD module id).
- **Only the MathJax files the pages use.** MathJax 3 comes from the pinned ``sphinx-mathjax-offline``
  package, but instead of its whole distribution (24 MB) only the CommonHTML bundle, its web fonts, the
  lazy-typesetting extension (``_config.yml``) and the TeX extensions that MathJax's autoload fetches on
  demand (``\\boldsymbol`` …) are copied.
- **Icons from the theme's web font, without its 1.5 MB script.** pydata-sphinx-theme draws its icons
  twice: with Font Awesome's CSS and web fonts, and with Font Awesome's JavaScript, which replaces each
  icon by an SVG and then watches every change to the page, MathJax's thousands of insertions included.
  The script is dropped from every page (the icons look the same) and from ``_static``.
- **Code without markup that draws nothing.** Pygments wraps every token of a code cell in a ``<span>``;
  names, punctuation and whitespace (``PLAIN_TOKENS``) get the code block's own colour in both themes of
  ``pygments.css``, so their spans are unwrapped: the page looks the same and is about a quarter lighter
  (``tests/test_book.py`` checks the colours in the built ``pygments.css``).
- **No Thebe** (no live-code server: its config is declared twice on notebook pages, a console error),
  **no source maps, no translation catalogues, no TrueType copies of woff2 fonts** in ``_static``:
  nothing a reader's browser fetches.
"""
from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import re
import shutil
from pathlib import Path

PLOTLY_CDN_MATHJAX = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"></script>')
# The inline bundle starts with plotly.js's licence header; an inline script cannot contain "</script>".
PLOTLY_INLINE = re.compile(r"<script>(/\*\*\s*\*\s*plotly\.js v([0-9][\w.\-]*).*?)</script>", re.S)
NEWPLOT = re.compile(r'Plotly\.newPlot\(\s*"[^"]*",\s*')
FIGURE_SCRIPT = re.compile(r"<script>(\s*window\.PLOTLYENV=.*?)</script>", re.S)
# Once MathJax has typeset the math in view (at once on a page without math), plotly.js is loaded and the
# figures are drawn. The bundle's address is a data attribute of this script (read via document.currentScript).
DRAW_FIGURES = """<script data-plotly-src="{src}">(function (me) {{
  function draw() {{ document.querySelectorAll("script.mp-plotly-figure").forEach(function (s) {{ (0, eval)(s.textContent); }}); }}
  function load() {{ var js = document.createElement("script"); js.src = me.dataset.plotlySrc; js.onload = draw;
                    document.head.appendChild(js); }}
  // MathJax typesets lazily: wait until no formula in view is still a placeholder (at most 3 s), so that
  // parsing plotly.js does not hold back the math a reader is looking at.
  function pending() {{ return [].some.call(document.querySelectorAll("mjx-container > mjx-lazy"), function (e) {{
                          var r = e.parentElement.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }}); }}
  function settled(t0) {{ if (pending() && performance.now() - t0 < 3000) {{ requestAnimationFrame(function () {{ settled(t0); }}); }}
                         else {{ load(); }} }}
  function start() {{ var p = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
                     var go = function () {{ settled(performance.now()); }};
                     if (p) {{ p.then(go, go); }} else {{ load(); }} }}
  if (document.readyState === "loading") {{ document.addEventListener("DOMContentLoaded", start); }} else {{ start(); }}
}})(document.currentScript);</script>"""
CARTESIAN = {"bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour", "image",
             "pie", "scatter", "scatterternary", "violin"}  # the trace modules of plotly-cartesian.min.js
GL3D = {"scatter", "scatter3d", "surface", "isosurface", "volume", "mesh3d", "cone", "streamtube"}  # plotly-gl3d.min.js
CARTESIAN_JS, GL3D_JS = "vendor/plotly-cartesian.min.js", "vendor/plotly-gl3d.min.js"
BUNDLES = ((CARTESIAN, CARTESIAN_JS), (GL3D, GL3D_JS))  # official partial bundles, vendored by `make vendor`
MATHJAX_SUBSET = ["tex-chtml.js", "ui/lazy.js", "input/tex/extensions", "output/chtml/fonts/woff-v2"]
MATHJAX_UNUSED = ["input/tex/extensions/all-packages.js"]  # every extension in one file; autoload loads singly
THEBE_FILES = ("sphinx-thebe.js", "sphinx-thebe.css")
PLAIN_TOKENS = ("n", "p", "nn", "nx", "pm", "w")   # Name, Punctuation, Name.Namespace, Name.Other, Punctuation.Marker, Whitespace
PLAIN_SPAN = re.compile(r'<span class="(?:%s)">([^<]*)</span>' % "|".join(PLAIN_TOKENS))
HIGHLIGHT = re.compile(r'<div class="highlight[^"]*"><pre>.*?</pre></div>', re.S)
FONTAWESOME_JS = re.compile(r'\n?[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>')
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.S)
WIDGET_FILES = ("vendor/require.js", "vendor/html-manager/embed-amd.js")
STATIC_WIDGETS = {"HBoxModel", "VBoxModel", "HTMLModel", "LabelModel", "FloatProgressModel", "IntProgressModel",
                  "LayoutModel", "HTMLStyleModel", "LabelStyleModel", "ProgressStyleModel", "DescriptionStyleModel"}


def mathjax_source() -> Path:
    """The MathJax distribution inside the installed ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("sphinx-mathjax-offline is not installed (it is pinned in requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"


def _version_of(js_path: Path) -> str | None:
    m = re.search(r"plotly\.js \([^)]*\) v([0-9][\w.\-]*)", js_path.read_text(encoding="utf-8")[:400]) \
        if js_path.exists() else None
    return m.group(1) if m else None


def trace_types(body: str) -> set[str]:
    """The trace types of every plotly figure in a page body (a trace without ``type`` is a scatter)."""
    types, dec = set(), json.JSONDecoder()
    for m in NEWPLOT.finditer(body):
        try:
            traces, _ = dec.raw_decode(body, m.end())
            types |= {t.get("type", "scatter") for t in traces}
        except (ValueError, AttributeError):  # not the renderer's usual JSON: take the full bundle
            types.add("?")
    return types


def _plotly_src(app, context, js: str, version: str, types: set[str]) -> str:
    """Where this page loads plotly.js from: the first partial bundle that has all its traces, else the full one."""
    static = Path(app.outdir) / "_static"
    for modules, bundle in BUNDLES:
        vendored = [Path(app.confdir or app.srcdir, d, bundle) for d in app.config.html_static_path]  # the source copy
        if types <= modules and any(_version_of(v) == version for v in vendored):
            return context["pathto"]("_static/" + bundle, 1)
    rel = f"plotly/plotly-{version}-{hashlib.sha256(js.encode()).hexdigest()[:12]}.js"
    out = static / rel
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".tmp").write_text(js, encoding="utf-8")
        out.with_suffix(".tmp").replace(out)
    return context["pathto"]("_static/" + rel, 1)


def _widget_html(models: dict, model_id: str) -> str:
    """Static HTML for one saved widget (boxes, HTML, labels, progress bars)."""
    model = models[model_id]
    name, st = model["model_name"], model["state"]
    if name in ("HBoxModel", "VBoxModel"):
        kids = "".join(_widget_html(models, c.removeprefix("IPY_MODEL_")) for c in st.get("children", []))
        return f'<div class="mp-widget mp-{name[:4].lower()}">{kids}</div>'
    if name == "HTMLModel":
        return f'<span class="mp-widget-text">{st.get("value", "")}</span>'
    if name == "LabelModel":
        return f'<span class="mp-widget-text">{html.escape(str(st.get("value", "")))}</span>'
    lo, hi, v = float(st.get("min", 0)), float(st.get("max", 100)), float(st.get("value", 0))
    pct = 0.0 if hi <= lo else max(0.0, min(100.0, 100 * (v - lo) / (hi - lo)))
    style = st.get("bar_style") or "info"
    return (f'<span class="mp-progress mp-progress-{style}" role="progressbar" aria-valuemin="{lo:g}" '
            f'aria-valuemax="{hi:g}" aria-valuenow="{v:g}"><span style="width: {pct:.1f}%"></span></span>')


def _static_widgets(context, scripts) -> bool:
    """Draw the page's widgets as HTML if all are boxes, text and progress bars; True if done."""
    state = next((s for s in scripts if getattr(s, "attributes", {}).get("type") == WIDGET_STATE), None)
    if state is None or "body" not in context:
        return False
    models = json.loads(state.attributes["body"])["state"]
    if any(m["model_name"] not in STATIC_WIDGETS for m in models.values()):
        return False
    context["body"] = WIDGET_VIEW.sub(lambda m: _widget_html(models, json.loads(m.group(1))["model_id"]),
                                      context["body"])
    scripts[:] = [s for s in scripts if s is not state
                  and not str(getattr(s, "filename", None) or "").endswith(WIDGET_FILES)]
    return True


def plain_code(body: str) -> str:
    """``body`` with the spans of PLAIN_TOKENS inside code blocks unwrapped (their text kept)."""
    return HIGHLIGHT.sub(lambda m: PLAIN_SPAN.sub(r"\1", m.group(0)), body)


def _page(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")  # the builder's own list (add_js_file appends to it): edit in place
    if "body" in context:
        body = PLOTLY_CDN_MATHJAX.sub("", context["body"])
        types, srcs = trace_types(body), []
        body = PLOTLY_INLINE.sub(lambda m: srcs.append(_plotly_src(app, context, m.group(1), m.group(2), types)) or "", body)
        body, n = FIGURE_SCRIPT.subn(r'<script type="text/plain" class="mp-plotly-figure">\1</script>', body)
        if n and not srcs:
            raise RuntimeError(f"{pagename}: plotly figures but no plotly.js bundle in the page (PLOTLY_RENDERER=notebook?)")
        context["body"] = plain_code(body) + (DRAW_FIGURES.format(src=html.escape(srcs[0])) if n else "")
    if scripts is not None:
        scripts[:] = [s for s in scripts if not str(getattr(s, "filename", None) or "").endswith(THEBE_FILES)
                      and "THEBE_JS_URL" not in str(getattr(s, "attributes", {}).get("body", ""))]
        if not _static_widgets(context, scripts):
            names = [str(getattr(s, "filename", None) or "") for s in scripts]
            if any(n.endswith(WIDGET_FILES[1]) for n in names):
                folder = context["pathto"]("_static/vendor/html-manager", 1)
                app.add_js_file(None, body='requirejs.config({paths: {"@jupyter-widgets/html-manager/dist": "%s"}});'
                                % folder)
                config = scripts.pop()  # right after require.js, before embed-amd.js (equal priorities keep order)
                scripts.insert(next(i for i, n in enumerate(names) if n.endswith(WIDGET_FILES[0])) + 1, config)
    if "css_files" in context:
        context["css_files"][:] = [c for c in context["css_files"]
                                   if not str(getattr(c, "filename", None) or "").endswith(THEBE_FILES)]


def _finish(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    src, dst = mathjax_source(), static / "mathjax"
    shutil.rmtree(dst, ignore_errors=True)
    for part in MATHJAX_SUBSET:
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dst / part)
    for part in MATHJAX_UNUSED:
        (dst / part).unlink(missing_ok=True)
    # Source maps (read only by developer tools), Thebe, and the theme's TrueType icon fonts: its CSS
    # lists woff2 first, which every current browser takes.
    for f in [*static.rglob("*.map"), *static.glob("sphinx-thebe.*"), *static.glob("vendor/fontawesome/webfonts/*.ttf")]:
        f.unlink()
    shutil.rmtree(static / "locales", ignore_errors=True)  # gettext catalogues: read by Sphinx, not browsers
    pages = []
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8", errors="ignore")
        if FONTAWESOME_JS.search(text):
            text = FONTAWESOME_JS.sub("", text)
            path.write_text(text, encoding="utf-8")
        pages.append(text)
    for f in static.glob("scripts/fontawesome.js*"):
        f.unlink()
    if not any(WIDGET_FILES[1] in p for p in pages):  # every widget was drawn as HTML
        for rel in WIDGET_FILES:
            (static / rel).unlink(missing_ok=True)
        shutil.rmtree(static / "vendor" / "html-manager", ignore_errors=True)
    for _, bundle in BUNDLES:
        if not any(bundle in p for p in pages):
            (static / bundle).unlink(missing_ok=True)
    for full in static.glob("plotly/*.js"):  # a full plotly.js that no page loads now (left by an earlier build)
        if not any(full.name in p for p in pages):
            full.unlink()
    # The root index.html is sphinx-external-toc's redirect (written before this runs): give it the icon too,
    # or a browser opening the site asks for /favicon.ico.
    index, icon = Path(app.outdir) / "index.html", app.config.html_favicon
    if icon and index.exists() and "Refresh" in index.read_text() and 'rel="icon"' not in index.read_text():
        index.write_text(f'<link rel="icon" href="_static/{Path(icon).name}" />\n' + index.read_text())


def setup(app):
    app.connect("html-page-context", _page, priority=900)  # after myst-nb has added the page's scripts
    app.connect("build-finished", _finish, priority=900)  # after sphinx-external-toc wrote index.html
    return {"parallel_read_safe": True, "parallel_write_safe": False}
