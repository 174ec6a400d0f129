# One virtualenv, venv/, shared with `pulumi preview` (Pulumi.yaml: runtime.options.virtualenv: venv).
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
# checkov, the third-party Kubernetes gate of `make test`, in a virtualenv of its own: its pins conflict with ours.
# Hidden (leading dot), so the tests and tools that walk the project's own files skip it.
CHECKOV_VENV := .venv-checkov
STACK ?= prod
# Two workers, each taking a whole module at a time (the renders' modules together): tests/conftest.py's scheduler.
XDIST := -n 2

.PHONY: plan render diff golden golden-check unit test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

## plan: the sizing plan of STACK (default prod): sizes, node pool, cost
plan: $(VENV)/.installed
	$(PY) -m sizing plan --stack $(STACK)

## render: the offline render of STACK into build/STACK/ (no Pulumi CLI, no cloud)
render: $(VENV)/.installed
	$(PY) -m offline.render --stack $(STACK)

# prometheus, promtool, alertmanager and amtool, from Debian's packages (tools/install-prometheus).
.bin/prometheus .bin/promtool .bin/alertmanager .bin/amtool:
	tools/install-prometheus || echo "prometheus could not be installed: rule and server tests will skip (CI fails instead)"

## diff: object-by-object diff of two renders, replacements flagged (A=prod B=prod:baseline; A=prod@main: as on main)
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

## unit: the fast inner loop, the pure and mock layers (no real prometheus, promtool, alertmanager or checkov)
unit: $(VENV)/.installed
	$(PY) -m pytest $(XDIST) -m "not programs" tests/sizing tests/components tests/policy tests/offline tests/test_main.py

## test: every test layer (pure, mocks, artifacts) and the linter
test: $(VENV)/.installed $(CHECKOV_VENV)/.installed .bin/prometheus .bin/promtool .bin/alertmanager .bin/amtool
	$(PY) -m ruff check .
	$(PY) -m pytest $(XDIST)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## bench: timings of the CLI and the planner (targets in README.md)
bench: $(VENV)/.installed
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build .pytest_cache .hypothesis .ruff_cache
