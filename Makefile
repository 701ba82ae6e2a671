# logstack.elk — developer entry points. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
DEMO_SCENARIO ?= sandbox/scenarios/demo.yml
REAL_SCENARIO ?= sandbox/scenarios/real-es7.yml
# Real distributions the tests and demo-real use (jars from Maven Central, cached in ~/.cache/logstack-real).
REAL_DISTS ?= elasticsearch:7.16.3 elasticsearch:7.17.29 opensearch:2.19.6 opensearch:3.9.0
# loadgroup: tests marked xdist_group share one real cluster on one worker
PYTEST_ARGS ?= -n 3 --dist loadgroup --durations=25

.PHONY: help venv collection demo demo-real real-deps test lint sanity unit pytest molecule bench build clean

help:
	@echo "make demo   - set up .venv, start the sandbox, run the rolling upgrade against it"
	@echo "make demo-real - the same upgrade on a real Elasticsearch 7.16 -> 7.17 cluster (needs a JDK and Maven)"
	@echo "make test   - the whole test suite (lint, sanity, pytest, molecule)"
	@echo "make bench  - benchmarks (ratios against bounds measured in the same run)"

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python3 >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Make this checkout importable as the collection logstack.elk.
collection:
	@mkdir -p .collections/ansible_collections/logstack
	@ln -sfn ../../.. .collections/ansible_collections/logstack/elk

demo: venv collection
	$(BIN)/python -m sandbox run --scenario $(DEMO_SCENARIO) -- \
	  ansible-playbook playbooks/upgrade-es.yml -i inventories/sandbox

# Real nodes need a JDK 17 (and 21+ for OpenSearch 3.x) and Maven to fetch the jars once.
real-deps: venv
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  { echo "make demo-real needs a JDK and Maven: apt-get install openjdk-17-jdk-headless maven"; exit 2; }
	$(BIN)/python -m sandbox.real.dist fetch $(REAL_DISTS)

demo-real: venv collection real-deps
	$(BIN)/python -m sandbox run --scenario $(REAL_SCENARIO) -- \
	  ansible-playbook playbooks/upgrade-es.yml -i inventories/sandbox -e @sandbox/real/timeouts.yml

test: venv collection
	$(MAKE) lint sanity pytest molecule

lint: venv collection
	$(BIN)/ansible-lint --profile production --offline

sanity: venv collection
	bash tests/sanity/run.sh

pytest: venv collection real-deps
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

molecule: venv collection
	bash tests/molecule/run.sh

bench: venv collection
	$(BIN)/python -m bench

build: venv collection
	$(BIN)/ansible-galaxy collection build --force --output-path build

clean:
	rm -rf build .collections .sandbox-state tests/output
