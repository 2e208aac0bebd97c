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
# Plotly figures become self-contained HTML the static site can show (plotly.js inlined, no CDN).
BOOK_ENV := PLOTLY_RENDERER=notebook
JB_FLAGS := --config _config.yml --toc book/_toc.yml -W -n --keep-going
# pip's site configuration prints one warning per package for its file indexes; hide only those.
QUIET_PIP := grep -v 'is ignored: it is neither a file nor a directory' || true

.PHONY: help book test env vendor chromium exercises clean bubblewrap grade

help:
	@echo "make book       build the book into _build/html (creates .venv on first run)"
	@echo "make test       run the whole test suite"
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

# require.js and the Jupyter widgets HTML manager, from the npm registry, so widgets render offline.
vendor: $(VENDOR)/.stamp
$(VENDOR)/.stamp:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm; }
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/html-manager
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q --loglevel=error requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.15 >/dev/null \
	  && tar xzf requirejs-2.3.7.tgz && cp package/require.js $(CURDIR)/$(VENDOR)/ && rm -rf package \
	  && tar xzf jupyter-widgets-html-manager-1.0.15.tgz \
	  && find package/dist -maxdepth 1 -type f ! -name '*.map' ! -name 'embed.js*' -exec cp {} $(CURDIR)/$(VENDOR)/html-manager/ \; \
	  && rm -rf $$tmp
	@touch $@

# Debian's Chromium for the headless rendering test (root installs it; otherwise it must be present).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Debian's bubblewrap: the grader's sandbox, one per submission (root installs it; otherwise it must be present).
bubblewrap:
	@command -v bwrap >/dev/null || { apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }

# make grade CHAPTER=01_neural_networks SUBMISSIONS=path/to/folder [GRADE_FLAGS="--json report.json"]
grade: $(STAMP) bubblewrap
	$(PY) -m mpkit grade $(SUBMISSIONS) --chapter $(CHAPTER) $(GRADE_FLAGS)

exercises: $(STAMP)
	$(PY) -m mpkit exercises solutions exercises

book: $(STAMP) $(VENDOR)/.stamp
	$(BOOK_ENV) $(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	@echo "The book is at: file://$(CURDIR)/_build/html/index.html"

test: $(STAMP) $(VENDOR)/.stamp chromium bubblewrap
	$(PY) -m pytest -n 2 --dist loadfile tests notebooks solutions exercises

clean:
	rm -rf _build
