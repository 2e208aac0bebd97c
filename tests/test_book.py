"""The book builds with warnings as errors, and its chapter pages render offline in headless Chromium."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
JB = Path(sys.executable).with_name("jupyter-book")
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """Build the whole book into a fresh folder (a clean execution, no cache) as `make book` does."""
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "PLOTLY_RENDERER": "notebook", "OMP_NUM_THREADS": "1"}
    cmd = [str(JB), "build", str(ROOT), "--path-output", str(out), "--config", str(ROOT / "_config.yml"),
           "--toc", str(ROOT / "book" / "_toc.yml"), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    reports = "\n".join(p.read_text()[-3000:] for p in (out / "_build" / "html" / "reports").glob("**/*.err.log")) \
        if (out / "_build" / "html" / "reports").exists() else ""
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}\n{reports}"
    return out / "_build" / "html"


def test_every_page_was_written(html):
    for page in ["index", "book/intro", "book/setup", "book/notation", "book/grading", "book/errata",
                 "book/references"]:
        assert (html / f"{page}.html").exists(), page
    for stem in CHAPTERS:
        assert (html / "notebooks" / f"{stem}.html").exists(), stem


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_page_has_colab_button_and_no_cdn_assets(html, stem):
    page = (html / "notebooks" / f"{stem}.html").read_text()
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    assert f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{stem}.ipynb" in page
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    assert not remote, f"scripts loaded from the internet: {remote}"
    assert "mathjax/tex-chtml.js" in page and "vendor/require.js" in page and "embed-amd.js" in page


def test_citations_resolve_to_the_bibliography(html):
    refs = (html / "book" / "references.html").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M)
    entries = set(re.findall(r'<div class="citation" id="([^"]+)" role="doc-biblioentry"', refs))
    assert len(entries) == len(keys), f"{len(keys)} BibTeX entries but {len(entries)} on the bibliography page"
    for stem in CHAPTERS:
        page = (html / "notebooks" / f"{stem}.html").read_text()
        cited = set(re.findall(r'href="\.\./book/references\.html#([^"]+)"', page))
        assert cited, f"{stem} cites no paper"
        assert cited <= entries, f"{stem}: citation links to missing entries {cited - entries}"


def _dump_dom(url: str, tmp_path: Path) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND",  # no internet: everything must come from the site
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_renders_offline_in_headless_chromium(html, stem, tmp_path):
    dom = _dump_dom((html / "notebooks" / f"{stem}.html").as_uri(), tmp_path)
    n_math = dom.count("<mjx-container")
    assert n_math >= 20, f"math was not typeset by MathJax ({n_math} formulas rendered)"
    assert re.search(r'class="[^"]*js-plotly-plot', dom) and 'class="main-svg"' in dom, \
        "no interactive plotly figure was drawn"
    assert re.search(r'class="[^"]*widget-hprogress', dom), "the tqdm progress bar widget was not rendered"
