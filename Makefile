# The two commands a user needs: `make demo` (the main job) and `make test`.
# Both create .venv on first use and reinstall only when the requirements change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo airflow bench migrate e2e chaos

$(STAMP): requirements.txt requirements-dev.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'pricegroups_plugins.pth').write_text('$(CURDIR)/plugins\n')"
	touch $(STAMP)

# two pytest-xdist workers (TEST_WORKERS=0: one process), each test file on one worker (its module
# fixtures are built once; `loadgroup` does not group under pytest 9.2, pytest-xdist#1386), in
# collection order (tests/conftest.py puts the slow files first); prints the 15 slowest tests.
# PYTEST_ARGS comes last, so it may override these
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

DAYS ?= 14

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --days $(DAYS)

airflow: $(STAMP)
	$(BIN)/python scripts/airflow_local.py

E2E_STAMP := $(VENV)/.installed-e2e

$(E2E_STAMP): $(STAMP) requirements-e2e.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-e2e.txt
	touch $(E2E_STAMP)

# real Airflow components (LocalExecutor, then CeleryExecutor) and a headless Chromium; docs/e2e.md
e2e: $(E2E_STAMP)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { echo "make e2e needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"; exit 2; }
	$(BIN)/python scripts/e2e.py

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# the fault campaign (docs/chaos.md): SEED=11 CHAOS_RUNS=36 by default, about 13 minutes on 2 cores
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py

migrate: $(STAMP)
	$(BIN)/python -m pricegroups migrate
