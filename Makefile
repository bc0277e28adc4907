# saliency-audit — the two quickstart commands are `make demo` and `make test`.
# Both create .venv (python3 -m venv), install requirements.txt into it and the package salaudit
# (src/salaudit, `pip install -e .`) when it is missing or older than requirements.txt/pyproject.toml.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
CORES ?= all
# make estimate: the config to estimate, and the run whose benchmarks/ calibrate it.
CONFIG ?= config.yaml
REFERENCE_CONFIG ?= config.yaml
REFERENCE_DIR ?= .
# ... and the GPU figures (bench/gpu.sh's JSON) that price its torch jobs on one GPU.
GPU_FIGURES ?= bench/gpu_results
# Recipes and the jobs Snakemake starts find the venv's python/snakemake first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv demo test test-fast test-unit test-slurm estimate lint dry-run clean bench bench-methods bench-report

help:
	@echo "make demo   - run the whole study on the embedded demo data (results/)"
	@echo "make test   - run the test suite (unit + end-to-end on a tiny config; the SLURM"
	@echo "              test too when root and apt-get are there, else it says why it skipped)"
	@echo "make test-fast - the unit tests only, no workflow run (about 3 minutes: the edit loop)"
	@echo "make test-slurm - only the SLURM test: a throw-away local cluster runs the tiny config"
	@echo "make estimate CONFIG=my.yaml - CPU/GPU hours of CONFIG's pending jobs, from benchmarks/"
	@echo "make lint   - snakefmt --check and snakemake --lint (CI runs it)"
	@echo "make dry-run [CONFIG=my.yaml] - what is pending, a line per rule, and its estimated hours"
	@echo "make clean  - remove results/, logs/, benchmarks/ and .snakemake/"
	@echo "make bench  - issue 7 benchmarks: methods + whole demo in results/bench/demo (long), BENCHMARKS.md"
	@echo "make bench-methods - saliency method throughput only (items 1-3), BENCHMARKS.md"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	snakemake --cores $(CORES)
	snakemake --report results/report.html
	@echo "The report: $(CURDIR)/results/report.html"
	@python tools/report_screenshot.py results/report.html results/report_screenshot.png \
		|| echo "(no screenshot of its first screen without Chromium: apt-get install chromium)"

# The SLURM test (tests/e2e/test_slurm.py) is part of it; it skips itself, with the
# reason, where it cannot build its cluster (SALAUDIT_SKIP_SLURM=1 skips it on purpose).
test: $(STAMP)
	python -m pytest

test-fast: $(STAMP)
	python -m pytest tests/unit

test-unit: test-fast

test-slurm: $(STAMP)
	python -m pytest -m slurm tests/e2e/test_slurm.py

estimate: $(STAMP)
	python tools/estimate.py --configfile $(CONFIG) --reference-config $(REFERENCE_CONFIG) --reference-dir $(REFERENCE_DIR) \
		$(if $(wildcard $(GPU_FIGURES)/methods_gpu.json),--gpu-figures $(GPU_FIGURES))

# snakefmt (the Snakefile and workflow/ formatted as Snakemake's catalog expects) and Snakemake's linter
# (tools/lint_workflow.py: every lint fails but {PYTHON} and {SCRIPTS} in shell lines, not params by design).
lint: $(STAMP)
	snakefmt --check Snakefile workflow/
	python tools/lint_workflow.py

# What is pending, a line per rule (the full dry run of config/paper.yaml prints hundreds of KB),
# then the CPU/GPU hours it would take (calibrated on this folder's benchmarks/, if any).
dry-run: $(STAMP)
	snakemake -n --quiet rules --configfile $(CONFIG)
	$(MAKE) --no-print-directory estimate CONFIG=$(CONFIG) || true

clean:
	rm -rf results logs benchmarks .snakemake

# Benchmarks (BENCHMARKS.md, issue 7). Not tests: they print PASS/MISS and never fail on a slow
# machine. The demo run goes to a scratch directory, so results/ of `make demo` is untouched.
BENCH_CORES ?= 2
BENCH_METHODS_ARGS ?= --arch inception_v3 densenet121 --size 96 --batch 16 --n-images 16 --device auto

bench-methods: $(STAMP)
	python bench/methods.py $(BENCH_METHODS_ARGS) --out results/bench/methods.json
	python bench/report.py

bench: $(STAMP)
	python bench/methods.py $(BENCH_METHODS_ARGS) --out results/bench/methods.json
	python bench/training.py --out results/bench/training.json
	rm -rf results/bench/demo
	python bench/pipeline.py demo --workdir results/bench/demo --cores $(BENCH_CORES) --out results/bench/pipeline.json
	python bench/pipeline.py scaling --workdir results/bench/scaling --cores $(BENCH_CORES) --out results/bench/scaling.json
	python bench/report.py

bench-report: $(STAMP)
	python bench/report.py
