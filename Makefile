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
	$(VENV)/bin/ruff check impls bench tests benchmarks

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

.PHONY: compare install-gpu
# make compare                       the two newest runs in results/
# make compare A=results/X B=results/Y ARGS="--fail-above 10"
compare: install
	$(PY) -m bench compare $(A) $(B) $(ARGS)

# CUDA builds of JAX and torch that share CUDA 13 (torch 2.13's PyPI wheels are built for
# CUDA 13.0; jax[cuda13] brings the matching plugin). Needs an NVIDIA driver for CUDA 13.
install-gpu: install
	$(PY) -m pip install --quiet -c constraints.txt "jax[cuda13]==0.10.2"
	$(PY) -m pip install --quiet --force-reinstall --no-cache-dir -c constraints.txt "torch==2.13.0"
	$(PY) -c "from impls import runtime; print('GPU seen by jax:', runtime.gpu_available('jax'), '| by torch:', runtime.gpu_available('torch'))"
