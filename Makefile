# courier: make test | make check | make bench [PRESET=quick|default|full] [ARGS="..."]
# Every target creates .venv and installs the pinned versions first, if that is not done yet.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: install test check lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

test: install
	$(PY) -m pytest $(ARGS)

check: install
	$(PY) -m bench check $(ARGS)

lint: install
	$(VENV)/bin/ruff check impls bench tests

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks

PRESET ?= default

.PHONY: bench report
bench: install
	$(PY) -m bench run --preset $(PRESET) $(ARGS)

report: install
	$(PY) -m bench report $(or $(RUN),results/latest)

.PHONY: diagnose trace
diagnose: install
	$(PY) -m bench diagnose $(ARGS)

trace: install
	$(PY) -m bench trace $(ARGS)
