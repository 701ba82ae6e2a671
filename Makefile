# logstack.elk — developer entry points. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
DEMO_SCENARIO ?= sandbox/scenarios/demo.yml
PYTEST_ARGS ?= -n 3 --durations=25

.PHONY: help venv collection demo test lint sanity unit pytest molecule bench build clean

help:
	@echo "make demo   - set up .venv, start the sandbox, run the rolling upgrade against it"
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

test: venv collection
	$(MAKE) lint sanity pytest molecule

lint: venv collection
	$(BIN)/ansible-lint --profile production --offline

sanity: venv collection
	bash tests/sanity/run.sh

pytest: venv collection
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

molecule: venv collection
	bash tests/molecule/run.sh

bench: venv collection
	$(BIN)/python -m bench

build: venv collection
	$(BIN)/ansible-galaxy collection build --force --output-path build

clean:
	rm -rf build .collections .sandbox-state tests/output
