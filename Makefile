# cloudcore.ha — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
# ansible-core releases the unit tests run on: 2.21 in $(VENV), each older one in .venv-<release>
UNIT_CORES := 2.21 2.20 2.19 2.18 2.17
UNIT_STAGES := $(addprefix units-ansible-,$(UNIT_CORES))
unit_venv = $(if $(filter 2.21,$(1)),$(VENV),$(ROOT)/.venv-$(1))
COLLECTION_LINK := $(ROOT)/.build/collections/ansible_collections/cloudcore/ha
# ansible-test sanity on what ships (the tarball's content) and on the checkout (tests/, molecule/ too)
SANITY_TREE := /tmp/cloudcore-ha-sanity/ansible_collections/cloudcore/ha
SANITY_CHECKOUT := /tmp/cloudcore-ha-sanity-checkout/ansible_collections/cloudcore/ha
STAGE := $(ROOT)/scripts/stage
LAB := $(ROOT)/tests/lab/lab
PYTEST_UNITS := -m pytest tests/unit -q -p no:cacheprovider

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.build/collections:$(ROOT)/.build/deps
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export STAGE_LOG := $(ROOT)/.build/stages.tsv

.PHONY: help setup setup-host venv collections link test demo lint sanity units $(UNIT_STAGES) docs build-install ee \
        lab-up lab-down lab-tests molecule integration integration-day2 manifests clean

help:
	@echo "make demo      set everything up, bring the lab up, run the main job on it, print what happened"
	@echo "make test      set everything up and run every check (lint, sanity, units, docs, build, ee, lab, molecule, integration)"
	@echo "make setup | lab-up | lab-down | lint | sanity | units | docs | manifests | build-install | ee | lab-tests | molecule | integration | integration-day2"

# ---------------------------------------------------------------- setup
setup: setup-host venv collections link

setup-host:
	@$(STAGE) setup-host scripts/setup-host

venv:
	@$(STAGE) venv-2.21 scripts/setup-venv $(VENV) 3.12 requirements/dev.in requirements/constraints-py3.12.txt
# the unit-test venvs, each on a Python that release supports as a controller (2.17: 3.10-3.12,
# 2.18 and 2.19: 3.11-3.13, 2.20: 3.12-3.14), so 3.11, 3.12 and 3.13 are all exercised
	@$(STAGE) venv-2.20 scripts/setup-venv $(ROOT)/.venv-2.20 3.13 requirements/units.in requirements/constraints-units-2.20.txt
	@$(STAGE) venv-2.19 scripts/setup-venv $(ROOT)/.venv-2.19 3.11 requirements/units.in requirements/constraints-py3.11.txt
	@$(STAGE) venv-2.18 scripts/setup-venv $(ROOT)/.venv-2.18 3.13 requirements/units.in requirements/constraints-units-2.18.txt
	@$(STAGE) venv-2.17 scripts/setup-venv $(ROOT)/.venv-2.17 3.12 requirements/units.in requirements/constraints-units-2.17.txt
	@$(STAGE) venv-sanity scripts/setup-venv $(ROOT)/.venv-sanity 3.12 requirements/sanity-2.21.txt requirements/constraints-sanity.txt
	@$(STAGE) venv-docs scripts/setup-venv $(ROOT)/.venv-docs 3.12 requirements/docs.in requirements/constraints-docs.txt

collections:
	@$(STAGE) collections scripts/fetch-collections $(ROOT)/.build/deps

link:
	@mkdir -p $(dir $(COLLECTION_LINK)) && ln -sfn $(ROOT) $(COLLECTION_LINK)

# ---------------------------------------------------------------- the two commands
test: setup
	@mkdir -p .build && : > $(STAGE_LOG)
	@$(MAKE) --no-print-directory lint sanity units docs manifests build-install ee lab-tests molecule integration
	@echo; echo "make test: all stages passed"; column -t $(STAGE_LOG)

demo: setup
	@scripts/demo

# ---------------------------------------------------------------- checks
lint:
	@$(STAGE) lint ansible-lint --offline

# two releases at a time (each run is one CPU-bound pytest; CI's machine has two cores), each
# release's output kept together
units: link
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(UNIT_STAGES)

$(UNIT_STAGES): units-ansible-%: link
	@cd $(COLLECTION_LINK) && $(STAGE) units-ansible-$* env PYTHONPATH=$(ROOT)/.build/collections $(call unit_venv,$*)/bin/python $(PYTEST_UNITS)

# the docs site, strict and offline: .build/docs/html/index.html
docs: link
	@$(STAGE) docs scripts/docs $(COLLECTION_LINK) $(ROOT)/.build/docs

manifests:
	@$(STAGE) manifests $(VENV)/bin/python -m pytest tests/manifests -q -p no:cacheprovider

sanity:
	@$(STAGE) sanity scripts/sanity $(SANITY_TREE) $(SANITY_CHECKOUT)

build-install:
	@$(STAGE) build-install scripts/build-install

# an execution environment's build context from the tarball build-install made, introspected offline
ee: build-install
	@$(STAGE) ee $(VENV)/bin/python -m pytest tests/ee -q -p no:cacheprovider

lab-up:
	@$(STAGE) lab-up $(LAB) up --nodes 3

lab-down:
	@$(STAGE) lab-down $(LAB) down

# --durations: the lab's own tests are the longest stage after molecule and integration (~8 minutes)
lab-tests:
	@$(STAGE) lab-tests $(VENV)/bin/python -m pytest tests/lab -q -p no:cacheprovider --durations=15

molecule:
	@$(STAGE) molecule scripts/molecule-all

integration:
	@$(STAGE) integration scripts/integration

# The day-2 module alone (tests/integration/test_8_day2.py: add, remove, upgrade, VIP change), which
# `make integration` runs too.
integration-day2: setup build-install
	@$(STAGE) integration-day2 scripts/integration tests/integration/test_8_day2.py

clean: lab-down
	rm -rf .build .venv .venv-2.* .venv-sanity

# ---------------------------------------------------------------- benchmarks (not part of `make test`)
.PHONY: bench-failover bench-converge bench-edge
bench-failover: setup
	$(LAB) down && $(LAB) up --nodes 2
	$(VENV)/bin/python tests/bench/bench_failover.py --trials 5; rc=$$?; $(LAB) down; exit $$rc

bench-converge: setup
	$(VENV)/bin/python tests/bench/bench_converge.py --runs 3; rc=$$?; $(LAB) down; exit $$rc

# What edge nodes experience (README "Failover, as an edge node sees it"): 3 nodes, the whole site,
# 200 edges of each edgecore profile, 3 trials of every fault, ours and the seed's keepalived style;
# then (README "VIP or balanced") 300 edgecore v1.23 edges, a CloudCore failure in vip and balanced mode.
bench-edge: setup
	$(LAB) down && $(LAB) up --nodes 3
	$(VENV)/bin/python tests/bench/bench_edge.py --trials 3 --count 200 && \
	$(VENV)/bin/python tests/bench/bench_balanced.py --trials 3 --count 170; rc=$$?; $(LAB) down; exit $$rc
