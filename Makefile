# One virtualenv, venv/, shared with `pulumi preview` (Pulumi.yaml: runtime.options.virtualenv: venv).
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
# checkov, the third-party Kubernetes gate of `make test`, in a virtualenv of its own: its pins conflict with ours.
# Hidden (leading dot), so the tests and tools that walk the project's own files skip it.
CHECKOV_VENV := .venv-checkov
STACK ?= prod
# Strict: any warning (a link to a missing page or anchor, a page not in nav) fails the build. Never --quiet: it hides
# the warnings from strict mode's count too, and a broken link passes. NO_MKDOCS_2_WARNING silences mkdocs-material's
# end-of-life banner (fixes until May 2027), which would otherwise open every build's output.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict
# Two workers, each taking a whole module at a time (the renders' modules together): tests/conftest.py's scheduler.
XDIST := -n 2

.PHONY: help plan render diff golden golden-check reference unit test docs lint bench clean
.DEFAULT_GOAL := help

# Two stages: `make plan` and `make render` need only the runtime (the program's and the CLI's packages); the test,
# lint and docs tools come on top the first time a target needs them. pip shows each package it fetches: the first
# `make plan` takes a minute, and says so.
$(VENV)/.runtime: requirements.txt
	@echo "setting up $(VENV)/ with the runtime packages (requirements.txt): a minute, once"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar on --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	@echo "adding the test, lint and docs tools to $(VENV)/ (requirements-dev.txt)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## help: this list of targets
help:
	@grep -E '^## [a-z-]+:' $(MAKEFILE_LIST) | sed -E 's/^## ([a-z-]+): /\1\t/' | awk -F'\t' '{printf "  make %-13s %s\n", $$1, $$2}'

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

## plan: the sizing plan of STACK (default prod): sizes, node pool, cost
plan: $(VENV)/.runtime
	$(PY) -m sizing plan --stack $(STACK)

## render: the offline render of STACK into build/STACK/ (no Pulumi CLI, no cloud)
render: $(VENV)/.runtime
	$(PY) -m offline.render --stack $(STACK)

# prometheus, promtool, alertmanager and amtool, from Debian's packages (tools/install-prometheus).
.bin/prometheus .bin/promtool .bin/alertmanager .bin/amtool:
	tools/install-prometheus || echo "prometheus could not be installed: rule and server tests will skip (CI fails instead)"

## diff: object-by-object diff of two renders, replacements flagged (A=prod B=prod:baseline; B=git:HEAD; A=prod@main)
A ?= prod
B ?= prod:baseline
diff: $(VENV)/.installed
	$(PY) -m offline.diff $(A) $(B)

## golden-check: every stack and profile renders and plans byte for byte as tests/golden/ holds
golden-check: $(VENV)/.installed
	$(PY) -m offline.golden

## golden: make tests/golden/ anew, once `make golden-check` and `make diff` show only the intended changes
golden: $(VENV)/.installed
	$(PY) -m offline.golden --write

## reference: write docs/reference/configuration.md and schema/stack.schema.json from the config models
reference: $(VENV)/.installed
	$(PY) -m sizing.config.reference --write

## unit: the fast inner loop, the pure and mock layers (no real prometheus, promtool, alertmanager or checkov)
unit: $(VENV)/.installed
	$(PY) -m pytest $(XDIST) -m "not programs" tests/sizing tests/monitoring tests/components tests/policy tests/offline tests/test_main.py tests/test_layers.py

## test: the linter, the docs site's strict build and every test layer (pure, mocks, artifacts)
test: $(VENV)/.installed $(CHECKOV_VENV)/.installed .bin/prometheus .bin/promtool .bin/alertmanager .bin/amtool
	$(PY) -m ruff check .
	$(MKDOCS)
	$(PY) -m pytest $(XDIST)

## docs: the documentation site (docs/, mkdocs.yml) into build/site/; strict: a broken link or anchor fails
docs: $(VENV)/.installed
	$(MKDOCS)

## lint: ruff, and the import layers of pyproject.toml's [tool.importlinter] (also checked by tests/test_layers.py)
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m ruff format --check .

## bench: timings of the CLI, the planner and rightsize (SUITES=1: the two test loops too, minutes)
bench: $(VENV)/.installed .bin/prometheus .bin/promtool
	$(PY) bench/bench.py $(if $(SUITES),--suites)

## clean: remove the virtualenvs, the renders and the caches
clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build .pytest_cache .hypothesis .ruff_cache
