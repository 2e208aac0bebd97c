# Two commands do all set-up (see README):
#   make book   build the HTML site (creates .venv, installs pins, executes notebooks)
#   make test   run the whole test suite (creates .venv if missing)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
VENDOR := book/_static/vendor
# Notebook kernels, the book build and the tests import this checkout's mpkit (also from a git worktree).
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
# One torch thread per process: notebooks run two at a time on two cores (see book/setup.md).
export OMP_NUM_THREADS ?= 1
# Plotly figures become self-contained HTML the static site can show (plotly.js inlined, no CDN; the
# build then serves plotly.js once from _static). Exported: nbval's kernels render the same outputs the book shows.
export PLOTLY_RENDERER := notebook
# mpkit installed from its wheel into a folder of its own: the notebooks import it from there under
# `make test`, as on Colab (see conftest.py and tests/test_colab.py).
COLAB_SITE := _build/colab-site
# The execution cache holds notebook outputs keyed by their code only: a change to mpkit or the pins
# must not be served stale outputs, so the cache is dropped when their hash changes.
MPKIT_HASH = $(shell cat requirements.txt pyproject.toml $$(find mpkit -name '*.py' | sort) | sha256sum | cut -c1-16)
CACHE_STAMP := _build/.jupyter_cache.mpkit
JB_FLAGS := --config _config.yml --toc book/_toc.yml -W -n --keep-going
# pip's site configuration prints one warning per package for its file indexes; hide only those.
QUIET_PIP := grep -v 'is ignored: it is neither a file nor a directory' || true

.PHONY: help bench book sheet test test-compat env vendor chromium poppler pngquant colab-site exercises clean bubblewrap grade

help:
	@echo "make book       build the book into _build/html (creates .venv on first run), with the formula sheet's PDF"
	@echo "make sheet      print the formula sheet of the built book to PDF again ($(SHEET_PDF))"
	@echo "make test       run the whole test suite"
	@echo "make bench      time every chapter against its target and mp.fit against other loops (benchmarks/results/)"
	@echo "make test-compat  run every chapter and exercise at the declared lower bounds and at the newest releases"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make grade CHAPTER=01_neural_networks SUBMISSIONS=folder   grade a class, each notebook in a sandbox"
	@echo "make clean      remove _build (keeps .venv)"

env: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	$(PY) -m pip check
	@touch $@

# From the npm registry, so pages work offline (book/_ext/offline_assets.py ships only what pages use):
# - require.js and the Jupyter widgets HTML manager, for widgets other than progress bars: embed-amd.js
#   (it bundles the widget libraries) and its icon fonts as woff2, the first format of their @font-face
#   rules (every current browser takes it and requests no other);
# - plotly's cartesian and 3-D bundles of the plotly.js version the installed plotly.py embeds.
VENDOR_STAMP := $(VENDOR)/.stamp-embed-woff2-cartesian-gl3d
vendor: $(VENDOR_STAMP)
$(VENDOR_STAMP): $(STAMP)
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm; }
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/html-manager
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q --loglevel=error requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.15 >/dev/null \
	  && tar xzf requirejs-2.3.7.tgz && cp package/require.js $(CURDIR)/$(VENDOR)/ && rm -rf package \
	  && tar xzf jupyter-widgets-html-manager-1.0.15.tgz \
	  && cp package/dist/embed-amd.js package/dist/*.woff2 $(CURDIR)/$(VENDOR)/html-manager/ && rm -rf package \
	  && v=$$($(CURDIR)/$(PY) -c 'from plotly.offline._plotlyjs_version import __plotlyjs_version__ as v; print(v)') \
	  && for b in cartesian gl3d; do npm pack -q --loglevel=error plotly.js-$$b-dist-min@$$v >/dev/null \
	       && tar xzf plotly.js-$$b-dist-min-$$v.tgz && cp package/plotly-$$b.min.js $(CURDIR)/$(VENDOR)/ && rm -rf package; done \
	  && rm -rf $$tmp
	@touch $@

# Debian's Chromium for the headless rendering test and the formula sheet's PDF (root installs it;
# otherwise it must be present).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Debian's bubblewrap: the grader's sandbox, one per submission (root installs it; otherwise it must be present).
bubblewrap:
	@command -v bwrap >/dev/null || { apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }

# make grade CHAPTER=01_neural_networks SUBMISSIONS=path/to/folder [GRADE_FLAGS="--json report.json"]
grade: $(STAMP) bubblewrap
	$(PY) -m mpkit grade $(SUBMISSIONS) --chapter $(CHAPTER) $(GRADE_FLAGS)

# Debian's poppler-utils: pdftotext and pdftoppm, with which the tests read the formula sheet's PDF.
poppler:
	@command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }

# Debian's pngquant: the build reduces the site's PNGs to palettes with it (book/_ext/light_images.py).
pngquant:
	@command -v pngquant >/dev/null || { apt-get update -qq && apt-get install -y -qq pngquant >/dev/null; }

exercises: $(STAMP)
	$(PY) -m mpkit exercises solutions exercises

# The formula sheet (book/formula_sheet.md) is printed by headless Chromium with its print stylesheet: A4;
# the PDF lies beside the page, which links to it.
SHEET_PDF := _build/html/book/formula-sheet.pdf
book: $(STAMP) $(VENDOR_STAMP) chromium pngquant
	@mkdir -p _build; [ "$$(cat $(CACHE_STAMP) 2>/dev/null)" = "$(MPKIT_HASH)" ] || rm -rf _build/.jupyter_cache
	@echo "$(MPKIT_HASH)" > $(CACHE_STAMP)
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	$(PY) tests/sitecheck.py _build/html --pdf book/formula_sheet.html $(SHEET_PDF)
	@echo "The book is at: file://$(CURDIR)/_build/html/index.html"

# Each notebook runs once: nbval executes it (in an empty folder, mpkit from the wheel) and stores the
# executed notebook in the book's cache; then the book is built from that cache and every page is checked.
test: $(STAMP) $(VENDOR_STAMP) chromium poppler pngquant bubblewrap colab-site
	rm -rf _build/.jupyter_cache _build/executed && echo "$(MPKIT_HASH)" > $(CACHE_STAMP)
	MP_COLAB_SITE=$(CURDIR)/$(COLAB_SITE) $(PY) -m pytest -n 2 --dist loadfile tests notebooks solutions exercises \
	  --ignore=tests/test_book.py --ignore=tests/test_colab.py --durations=15
	$(PY) -m pytest tests/test_colab.py tests/test_book.py --durations=8

sheet: $(STAMP) chromium
	@test -f _build/html/book/formula_sheet.html || { echo "no built book: run make book first"; exit 1; }
	$(PY) tests/sitecheck.py _build/html --pdf book/formula_sheet.html $(SHEET_PDF)

colab-site: $(STAMP)
	rm -rf $(COLAB_SITE) _build/wheels && mkdir -p _build
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w _build/wheels . 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps --target $(COLAB_SITE) _build/wheels/mpkit-*.whl 2>&1 | $(QUIET_PIP)

# Not part of `make test`: it installs two more environments (the lower-bound torch alone is ~2.5 GB of
# wheels). Run it whenever a chapter adds an import or a dependency range changes; see tests/compat.py.
test-compat: $(STAMP)
	$(PY) tests/compat.py

# Every chapter's training time and metric against its target, the loops side by side; see benchmarks/bench.py.
bench: $(STAMP)
	$(PY) benchmarks/bench.py $(BENCH_FLAGS)

clean:
	rm -rf _build
