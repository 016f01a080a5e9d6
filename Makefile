# Top-level Makefile: it only delegates. Each area adds its targets in mk/<area>.mk.
#   make setup   create .venv (pinned) and install simulators/toolchains when missing
#   make demo    run the main flow on the bundled example model
#   make test    run every test (pytest -n auto), including the simulations
#   make bench   write JSON benchmark results under build/bench/
SHELL := /bin/bash
ROOT  := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV  := $(ROOT)/.venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
export PATH := $(VENV)/bin:$(PATH)

BENCH_TARGETS :=

.DEFAULT_GOAL := help
.PHONY: help setup demo test bench lint clean

help:
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(STAMP) ## create .venv and install everything pinned

demo: $(STAMP) ## analyse + convert the bundled digits example and print the report
	bash scripts/demo.sh

test: $(STAMP) ## run every test (pytest -n auto)
	$(PY) -m pytest -n auto -q

lint: $(STAMP) ## ruff
	$(PY) -m ruff check pyquant scripts tests verif hls

include $(wildcard mk/*.mk)

bench: $(STAMP) $(BENCH_TARGETS) ## write build/bench/*.json
	@ls -1 build/bench/*.json

clean:
	rm -rf build out hls/build sw/build verif/sim_build
