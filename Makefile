# kgedit: `make demo` and `make test` bootstrap .venv themselves.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint format bench clean chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned, so nothing else can drag in a CUDA build
	$(PY) -m pip install -q "torch==2.13.*"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kgedit demo

# torch single-threaded unless told otherwise: the suite runs worker processes beside the test
# process, and two threads per process on two cores lose to one (docs/testing.md)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q --durations=30

# the fast tier: no model training, no benchmark-sized models, no servers (markers in
# pyproject.toml), on both cores (pytest-xdist); under 90 s on two idle cores
test-fast: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -n 2 -m "not slow and not service"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) bench/edit_latency.py

# headless Chromium for the audit report's screenshot test (Debian package; needs root)
chromium:
	@test -x /usr/bin/chromium || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) var/cache
