# The two commands a user needs: `make demo` (the main job) and `make test`.
# Both create .venv on first use and reinstall only when the requirements change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo airflow bench migrate

$(STAMP): requirements.txt requirements-dev.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'pricegroups_plugins.pth').write_text('$(CURDIR)/plugins\n')"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

DAYS ?= 14

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --days $(DAYS)

airflow: $(STAMP)
	$(BIN)/python scripts/airflow_local.py

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

migrate: $(STAMP)
	$(BIN)/python -m pricegroups migrate
