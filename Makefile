# cloudcore.ha — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
VENV_OLD := $(ROOT)/.venv-2.19
COLLECTION_LINK := $(ROOT)/.build/collections/ansible_collections/cloudcore/ha
SANITY_TREE := /tmp/cloudcore-ha-sanity/ansible_collections/cloudcore/ha
STAGE := $(ROOT)/scripts/stage
LAB := $(ROOT)/tests/lab/lab
PYTEST_UNITS := -m pytest tests/unit -q -p no:cacheprovider

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.build/collections:$(ROOT)/.build/deps
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export STAGE_LOG := $(ROOT)/.build/stages.tsv

.PHONY: help setup setup-host venv collections link test demo lint sanity units build-install \
        lab-up lab-down lab-tests molecule integration manifests clean

help:
	@echo "make demo      set everything up, bring the lab up, run the main job on it, print what happened"
	@echo "make test      set everything up and run every check (lint, sanity, units, build, lab, molecule, integration)"
	@echo "make setup | lab-up | lab-down | lint | sanity | units | manifests | build-install | lab-tests | molecule | integration"

# ---------------------------------------------------------------- setup
setup: setup-host venv collections link

setup-host:
	@$(STAGE) setup-host scripts/setup-host

venv:
	@$(STAGE) venv-2.21 scripts/setup-venv $(VENV) 3.12 requirements/dev.in requirements/constraints-py3.12.txt
	@$(STAGE) venv-2.19 scripts/setup-venv $(VENV_OLD) 3.11 requirements/units-2.19.in requirements/constraints-py3.11.txt
	@$(STAGE) venv-sanity scripts/setup-venv $(ROOT)/.venv-sanity 3.12 requirements/sanity-2.21.txt requirements/constraints-sanity.txt

collections:
	@$(STAGE) collections scripts/fetch-collections $(ROOT)/.build/deps

link:
	@mkdir -p $(dir $(COLLECTION_LINK)) && ln -sfn $(ROOT) $(COLLECTION_LINK)

# ---------------------------------------------------------------- the two commands
test: setup
	@mkdir -p .build && : > $(STAGE_LOG)
	@$(MAKE) --no-print-directory lint sanity units manifests build-install lab-tests molecule integration
	@echo; echo "make test: all stages passed"; column -t $(STAGE_LOG)

demo: setup
	@scripts/demo

# ---------------------------------------------------------------- checks
lint:
	@$(STAGE) lint ansible-lint --offline

units: link
	@cd $(COLLECTION_LINK) && $(STAGE) units-ansible-2.21 env PYTHONPATH=$(ROOT)/.build/collections $(VENV)/bin/python $(PYTEST_UNITS)
	@cd $(COLLECTION_LINK) && $(STAGE) units-ansible-2.19 env PYTHONPATH=$(ROOT)/.build/collections $(VENV_OLD)/bin/python $(PYTEST_UNITS)

manifests:
	@$(STAGE) manifests $(VENV)/bin/python -m pytest tests/manifests -q -p no:cacheprovider

sanity:
	@$(STAGE) sanity scripts/sanity $(SANITY_TREE)

build-install:
	@$(STAGE) build-install scripts/build-install

lab-up:
	@$(STAGE) lab-up $(LAB) up --nodes 3

lab-down:
	@$(STAGE) lab-down $(LAB) down

lab-tests:
	@$(STAGE) lab-tests $(VENV)/bin/python -m pytest tests/lab -q -p no:cacheprovider

molecule:
	@$(STAGE) molecule scripts/molecule-all

integration:
	@$(STAGE) integration scripts/integration

clean: lab-down
	rm -rf .build .venv .venv-2.19

# ---------------------------------------------------------------- benchmarks (not part of `make test`)
.PHONY: bench-failover bench-converge
bench-failover: setup
	$(LAB) down && $(LAB) up --nodes 2
	$(VENV)/bin/python tests/bench/bench_failover.py --trials 5; rc=$$?; $(LAB) down; exit $$rc

bench-converge: setup
	$(VENV)/bin/python tests/bench/bench_converge.py --runs 3; rc=$$?; $(LAB) down; exit $$rc
