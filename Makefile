# Set-up and the two commands of the README. `make demo` and `make test` each install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; a GPU cluster sets TORCH_SPEC and TORCH_INDEX (see README "Installing").
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
# The extras installed with the package: `test` (pytest + the harness of jobs/ and tests/) by default;
# `make install EXTRAS=` installs the library's runtime dependencies only (cluster.yaml's nodes).
EXTRAS ?= test

# Headless browser for the web page's test: Debian's Chromium and its driver.
BROWSER_PKGS := chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install browser demo test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e "$(if $(EXTRAS),.[$(EXTRAS)],.)"
	touch $@

demo: install
	$(PY) jobs/pipeline.py $(ARGS)

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(BROWSER_PKGS) || \
	  { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(BROWSER_PKGS); }; }

# Two pytest processes (pytest-xdist): the tests that start Ray, one after the other, beside the tests
# that need none (the group: tests/conftest.py).
PYTEST_WORKERS ?= 2

test: install browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
