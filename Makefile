# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test data bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel on local disk (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

data: $(STAMP)
	@PY=$(PY) bash scripts/ensure-data.sh

# The demo's own time (data check, study, report) is printed at its end: the wait a user
# has once the dependencies are installed.
demo: $(STAMP)
	@start=$$(date +%s); \
	PY=$(PY) bash scripts/ensure-data.sh && \
	$(PY) -m scalelab study run input-scaling --db scalelab.db && \
	$(PY) -m scalelab report input-scaling --db scalelab.db -o reports/input-scaling.html --png reports/input-scaling; \
	rc=$$?; echo "make demo: $$(( $$(date +%s) - start )) s after the dependencies were installed"; exit $$rc

test: $(STAMP)
	@PY=$(PY) bash scripts/ensure-data.sh || echo "(tests that need real Fashion-MNIST will be skipped)"
	@bash scripts/ensure-chromium.sh || true
	# one worker per core, each test file whole on one worker (its module fixtures built once)
	$(PY) -m pytest -q -p no:cacheprovider -n auto --dist loadfile

bench: data
	$(PY) benchmarks/sweep_speed.py

clean:
	rm -rf $(VENV) scalelab.db reports
