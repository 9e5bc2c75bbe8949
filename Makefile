# `make run` and `make test` set everything up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast chromium bench lab clean

# requirements.txt pins the tested versions; then the project itself is installed
# editable, so `import seqattn`, `python -m seqattn` and `seqattn` work from any folder.
$(VENV)/.installed: requirements.txt pyproject.toml setup.py
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py

# Browser tests drive Debian's chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

test: $(VENV)/.installed chromium
	$(PY) -m pytest

# Quick loop while developing: skips tests marked slow and browser.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow and not browser"

# Jupyter on the notebooks/ folder (installs JupyterLab into the venv on first use).
lab: $(VENV)/.installed
	$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet jupyterlab==4.6.6
	$(PY) -m jupyter lab notebooks/

bench: $(VENV)/.installed
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts build dist *.egg-info
