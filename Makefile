# saliency-audit — the two quickstart commands are `make demo` and `make test`.
# Both create .venv (python3 -m venv) and install requirements.txt into it when it is
# missing or older than requirements.txt.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
CORES ?= all
# Recipes and the jobs Snakemake starts find the venv's python/snakemake first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv demo test lint dry-run clean

help:
	@echo "make demo   - run the whole study on the embedded demo data (results/)"
	@echo "make test   - run the test suite (unit + end-to-end on a tiny config)"
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
	snakemake --report results/report.html
	@echo "The report: $(CURDIR)/results/report.html"

test: $(STAMP)
	python -m pytest

lint: $(STAMP)
	snakemake --lint

dry-run: $(STAMP)
	snakemake -n

clean:
	rm -rf results logs benchmarks .snakemake
