# saliency-audit — the two quickstart commands are `make demo` and `make test`.
# Both create .venv (python3 -m venv) and install requirements.txt into it when it is
# missing or older than requirements.txt.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
CORES ?= all
# make estimate: the config to estimate, and the run whose benchmarks/ calibrate it.
CONFIG ?= config.yaml
REFERENCE_CONFIG ?= config.yaml
REFERENCE_DIR ?= .
# Recipes and the jobs Snakemake starts find the venv's python/snakemake first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv demo test test-slurm estimate lint dry-run clean

help:
	@echo "make demo   - run the whole study on the embedded demo data (results/)"
	@echo "make test   - run the test suite (unit + end-to-end on a tiny config; the SLURM"
	@echo "              test too when root and apt-get are there, else it says why it skipped)"
	@echo "make test-slurm - only the SLURM test: a throw-away local cluster runs the tiny config"
	@echo "make estimate CONFIG=my.yaml - CPU/GPU hours of CONFIG's pending jobs, from benchmarks/"
	@echo "make lint   - snakemake --lint"
	@echo "make dry-run - snakemake -n (what is pending)"
	@echo "make clean  - remove results/, logs/, benchmarks/ and .snakemake/"

$(STAMP): requirements.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	snakemake --cores $(CORES)

# The SLURM test (tests/e2e/test_slurm.py) is part of it; it skips itself, with the
# reason, where it cannot build its cluster (SALAUDIT_SKIP_SLURM=1 skips it on purpose).
test: $(STAMP)
	python -m pytest

test-slurm: $(STAMP)
	python -m pytest -m slurm tests/e2e/test_slurm.py

estimate: $(STAMP)
	python scripts/estimate.py --configfile $(CONFIG) --reference-config $(REFERENCE_CONFIG) --reference-dir $(REFERENCE_DIR)

lint: $(STAMP)
	snakemake --lint

dry-run: $(STAMP)
	snakemake -n

clean:
	rm -rf results logs benchmarks .snakemake
