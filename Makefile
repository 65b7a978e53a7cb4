# hamfeat: the user's path is `make features && make train`; `make test` runs the test suite.
# Every target installs what it needs into ./.venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
JOBS   ?= 0
# DATA: a HAM10000 folder. Empty means: $$HAMFEAT_DATA, then ./data/HAM10000, then ../shared/data/ham10000.
DATA   ?=
DATA_ARG := $(if $(DATA),--data "$(DATA)",)

.PHONY: all venv features train cv score test lint bench clean

all: features train

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,plots]"
	touch $(STAMP)

venv: $(STAMP)

features: $(STAMP)
	$(PY) -m hamfeat features $(DATA_ARG) -o $(OUT)/features.parquet --jobs $(JOBS)

train: $(STAMP)
	$(PY) -m hamfeat train --features $(OUT)/features.parquet -o $(OUT)/model.skops

cv: $(STAMP)
	$(PY) -m hamfeat cv --features $(OUT)/features.parquet --report-dir benchmarks/reports

test: $(STAMP)
	$(PY) -m ruff check hamfeat tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check hamfeat tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
