"""The book's Sphinx extensions on small inputs (no build): plotly bundle choice, static progress bars,
bibliography labels, the exercises overview."""
import re
import sys
from pathlib import Path

import pytest
from pybtex.database import Entry, Person

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import bibstyle  # noqa: E402
import exercise_list  # noqa: E402
import light_images  # noqa: E402
import offline_assets  # noqa: E402


def _figure(traces: str) -> str:
    return f'<script>window.PLOTLYENV={{}}; if (x) {{ Plotly.newPlot(  "id-1",  {traces}, {{"template": {{"data": {{"surface": [{{"type": "surface"}}]}}}}}})}};</script>'


def test_trace_types_reads_the_traces_not_the_template():
    body = _figure('[{"type": "heatmap", "z": [[1]]}, {"x": [1], "y": [2]}]')
    assert offline_assets.trace_types(body) == {"heatmap", "scatter"}  # a trace without type is a scatter
    assert offline_assets.trace_types(_figure('[{"type": "scatter3d"}]')) == {"scatter3d"}
    assert offline_assets.trace_types(body) <= offline_assets.CARTESIAN
    assert not offline_assets.trace_types(_figure('[{"type": "scatter3d"}]')) <= offline_assets.CARTESIAN
    assert offline_assets.trace_types(_figure('[{"type": "mesh3d"}, {"type": "scatter"}]')) <= offline_assets.GL3D
    assert not offline_assets.trace_types(_figure('[{"type": "mesh3d"}, {"type": "image"}]')) <= offline_assets.GL3D


def test_unreadable_figure_takes_the_full_bundle():
    assert "?" in offline_assets.trace_types('Plotly.newPlot("id", not json)')


@pytest.mark.parametrize("bundle", [b for _, b in offline_assets.BUNDLES])
def test_vendored_bundles_match_the_plotly_js_that_plotly_embeds(bundle):
    from plotly.offline._plotlyjs_version import __plotlyjs_version__ as embedded

    path = ROOT / "book" / "_static" / bundle
    if not path.exists():
        pytest.skip("`make vendor` has not run")
    assert offline_assets._version_of(path) == embedded, "re-run `make vendor` (rm book/_static/vendor first)"


def test_progress_bar_is_drawn_from_the_saved_widget_state():
    models = {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
        "a": {"model_name": "HTMLModel", "state": {"value": "train: 75%"}},
        "b": {"model_name": "FloatProgressModel", "state": {"min": 0, "max": 40, "value": 30, "bar_style": ""}},
        "c": {"model_name": "LabelModel", "state": {"value": "30/40 <eta>"}},
    }
    html = offline_assets._widget_html(models, "box")
    assert html.startswith('<div class="mp-widget mp-hbox">') and "train: 75%" in html
    assert 'style="width: 75.0%"' in html and 'aria-valuenow="30"' in html and 'aria-valuemax="40"' in html
    assert "30/40 &lt;eta&gt;" in html  # a label is text, not markup
    models["b"]["state"].update(value=50)  # beyond max: a full bar, not an overflowing one
    assert 'style="width: 100.0%"' in offline_assets._widget_html(models, "box")


def test_bibliography_label_is_the_citation_text():
    labels = bibstyle.AuthorYearLabels()

    def entry(*authors, year="2015"):
        return Entry("article", fields={"year": year}, persons={"author": [Person(a) for a in authors]})

    assert labels.format_label(entry("Rosenblatt, Frank", year="1958")) == "Rosenblatt, 1958"
    assert labels.format_label(entry("Kingma, Diederik P.", "Ba, Jimmy")) == "Kingma and Ba, 2015"
    assert labels.format_label(entry("Long, J.", "Shelhamer, E.", "Darrell, T.")) == "Long et al., 2015"
    assert labels.format_label(entry("Everingham, M.", "Van Gool, Luc", "Williams, C.", year="2010")) \
        == "Everingham et al., 2010"
    same = [entry("Smith, A."), entry("Smith, B.")]
    assert list(labels.format_labels(same)) == ["Smith, 2015a", "Smith, 2015b"]


def test_citation_year_carries_the_bibliography_labels_letter():
    """Two "Chen et al., 2018" entries are listed as 2018a and 2018b: the citations in the text must say so."""
    from types import SimpleNamespace

    from sphinxcontrib.bibtex.plugin import find_plugin

    chen = Entry("article", fields={"year": "2018"},
                 persons={"author": [Person("Chen, R."), Person("Rubanova, Y."), Person("Duvenaud, D.")]})

    def year(label):
        return str(bibstyle.year_label.format_data({"entry": chen, "formatted_entry": SimpleNamespace(label=label)}))

    assert year("Chen et al., 2018b") == "2018b" and year("Chen et al., 2018") == "2018"
    assert year("[CRD18]") == "2018"   # a label of another style: the year alone
    bibstyle.setup(SimpleNamespace())   # registers the plugins (the app is not used)
    import yaml
    chosen = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]["bibtex_reference_style"]
    style = find_plugin("sphinxcontrib.bibtex.style.referencing", chosen)()   # the style the book uses
    assert isinstance(style, bibstyle.AuthorYearReferences)
    for role in ("p", "ps", "t", "year"):   # {cite} is {cite:p}; every role that writes a year uses year_label
        assert "year_label" in repr(style.role_style[role].inner(role)), role


def test_exercise_overview_names_every_exercise_function():
    for nb in sorted((ROOT / "exercises").glob("*.ipynb")):
        names = exercise_list.functions(nb)
        assert len(names) >= 4, f"{nb.name}: found only {names} in its exercise-spec cells"


def test_bibliography_parses_strictly_with_unique_keys():
    """A merge can drop an entry's closing brace; the book build only warns, and swallows the next entry."""
    from pybtex.database import parse_string

    text = (Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", text, re.M)
    assert len(keys) == len(set(keys)), f"duplicate keys: {sorted({k for k in keys if keys.count(k) > 1})}"
    assert len(parse_string(text, "bibtex").entries) == len(keys)


def test_plain_code_unwraps_only_tokens_drawn_in_the_blocks_colour():
    block = ('<div class="highlight"><pre><span></span><span class="n">x</span> <span class="o">=</span> '
             '<span class="nb">len</span><span class="p">(</span><span class="s2">&quot;a&quot;</span><span class="p">)</span>\n</pre></div>')
    out = offline_assets.plain_code('<p><span class="n">prose</span></p>' + block)
    assert '<div class="highlight"><pre><span></span>x <span class="o">=</span> <span class="nb">len</span>(' in out
    assert '<span class="s2">&quot;a&quot;</span>)' in out
    assert out.startswith('<p><span class="n">prose</span></p>'), "only code blocks are touched"


def test_pngquant_shrinks_a_figure_and_keeps_what_a_palette_cannot_render(tmp_path):
    """A matplotlib figure (lines and a heat map) gets smaller and looks the same; noise in every colour
    cannot be rendered by 256 of them at quality 80, and stays byte for byte."""
    import matplotlib
    import numpy as np
    from PIL import Image

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert light_images.shutil.which("pngquant"), "pngquant is missing: `make pngquant` installs it"
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), dpi=120)
    t = np.linspace(0, 6, 400)
    for k in range(4):
        a.plot(t, np.sin(t + k), label=f"phase {k}")
    a.legend()
    b.imshow(np.sin(np.add.outer(t[:100], t[:120])), cmap="viridis")
    fig.savefig(tmp_path / "figure.png")
    plt.close(fig)
    original = np.asarray(Image.open(tmp_path / "figure.png").convert("RGB")).astype(float)
    size = (tmp_path / "figure.png").stat().st_size
    assert light_images.quantise(tmp_path / "figure.png")
    small = np.asarray(Image.open(tmp_path / "figure.png").convert("RGB")).astype(float)
    assert (tmp_path / "figure.png").stat().st_size < size / 2
    assert 10 * np.log10(255 ** 2 / ((small - original) ** 2).mean()) > 40  # PSNR in dB
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    before = (tmp_path / "noise.png").read_bytes()
    assert not light_images.quantise(tmp_path / "noise.png")
    assert (tmp_path / "noise.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "noise.png"]  # no temporary left behind
