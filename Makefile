# craft: reproducible-paper package for CRAFT (arXiv 2603.17305).
# Every tool is called from the virtualenv by path; nothing relies on an activated venv.
#
#   make venv         create .venv from the pins in requirements.txt (+ requirements-nodeps.txt, installed
#                     with --no-deps) and install craft (editable)
#   make test         what CI runs (.ci/run): tests, lint and layer contracts, then the notebook gates
#   make reproduce    execute every notebook into runs/$(RUN)/executed/ (RUN=paper-qwen3-4b-thinking, ...:
#                     the params file params/$(RUN).yaml; RUN=default: the notebooks' defaults, params/organism.yaml;
#                     RUN=quick: one seed, fewer runs, smaller sets; claims printed instead of asserted)
#   make notebooks    re-run with defaults and refresh the committed (stripped) outputs
#   make exercises    the student notebooks (solutions removed) in build/exercises/ (RUN=quick: on the quick run)
#   make book         the rendered book (README + executed notebooks + docs/) in build/book/html/
#
# `make help` lists all targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:  # each recipe is one bash script; -e stops it at the first failing command
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PY   := $(VENV)/bin/python
NB   := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
RUN  ?= default
PARAMS := $(sort $(wildcard params/*.yaml))
# papermill's -f options for a params file and a notebook stem: `-f params/X.yaml`, then
# `-f params/X/<stem>.yaml` when that exists (overrides for that notebook only; papermill merges
# several -f in order). Keys of params/X.yaml must be parameters of every notebook.
PARAMS_FOR := params_for() { echo "-f $$1"; extra="$${1%.yaml}/$$2.yaml"; if test -f "$$extra"; then echo "-f $$extra"; fi; }; params_for

# Same strip command for the gate (--verify) and for refreshing the committed outputs.
STRIP := $(VENV)/bin/nbstripout --keep-output --keep-count \
	--extra-keys "metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets"

# Environment for every target (offline, deterministic hashing, no GUI backend, quiet libraries).
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := agg
export TRANSFORMERS_VERBOSITY := error
export TRL_EXPERIMENTAL_SILENCE := 1

# `make notebooks` overwrites the committed notebooks with a default run: refuse any other RUN
# before anything executes.
ifneq ($(filter notebooks,$(MAKECMDGOALS)),)
ifneq ($(RUN),default)
$(error `make notebooks` refreshes the committed outputs from the default run only (got RUN=$(RUN)); use `make reproduce RUN=$(RUN)`)
endif
endif

.PHONY: help venv test unit lint nb-verify nb-params nb-check test-exercises test-book reproduce notebooks \
	exercises book chromium lab lab-student instructor-notes section-times clean

help: ## list targets
	@echo "usage: make <target> [RUN=default|<a params/*.yaml name, e.g. paper-qwen3-4b-thinking>] [VENV=.venv]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)$$/  \1\t\2/' | expand -t 18

# ---------------------------------------------------------------------------------------------
# environment

# requirements-nodeps.txt goes in with --no-deps: nanogcg declares an older transformers than the one
# requirements.txt pins (the file says why that is safe).
$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## create/update .venv from requirements.txt (+ requirements-nodeps.txt, --no-deps), install craft

# ---------------------------------------------------------------------------------------------
# CI gates (called in this order by `make test`, which .ci/run calls)

test: venv ## what CI runs: unit, lint, nb-verify, nb-params, nb-check, test-exercises, test-book (stops at the first failure)
	$(MAKE) unit
	$(MAKE) lint
	$(MAKE) nb-verify
	$(MAKE) nb-params
	$(MAKE) nb-check
	$(MAKE) test-exercises
	$(MAKE) test-book

unit: venv ## pytest, without nbval, the student notebooks or the browser (`-m "not slow"` for a quick pass)
	$(PY) -m pytest tests -m "not notebooks and not exercises and not book" -q

lint: venv ## ruff, and the package's layer contracts (import-linter, pyproject.toml)
	$(VENV)/bin/ruff check craft tests scripts benchmarks notebooks book
	$(VENV)/bin/lint-imports

nb-verify: venv ## committed notebooks are stripped (strip -> no diff)
ifeq ($(NB),)
	@echo "nb-verify: no notebooks/[0-9][0-9]_*.ipynb yet, nothing to verify"
else
	$(STRIP) --verify $(NB)
endif

nb-params: venv ## every notebook has a parameters cell; every params/*.yaml key is a known parameter
	rm -rf build/params
	$(PY) scripts/prepare_notebooks.py --params $(PARAMS) --out build/params --suffix $(NB)

nb-check: venv ## papermill injects params/ci.yaml (no execution); nbval executes once and compares
	rm -rf build/check build/ci-run
	$(PY) scripts/prepare_notebooks.py --params params/ci.yaml --out build/check $(NB)
ifeq ($(NB),)
	@echo "nb-check: no notebooks/[0-9][0-9]_*.ipynb yet, nothing to execute"
else
	TQDM_DISABLE=1 $(PY) -m pytest --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 1500 \
		-p no:cacheprovider -q build/check
endif

# The student notebooks, run against the artifacts nb-check left in build/ci-run (every stage is then a
# cache hit, so this takes a few minutes; run alone, it first recomputes the CI-sized run). Two lanes run at
# once: notebooks 03 and 05 share notebook 03's run folders (locked while read), so they share lane A.
# OMP_WAIT_POLICY=PASSIVE keeps the two kernels' idle OpenMP threads from spinning against each other.
EX_LANE_A := 00 or 01 or 02 or 03 or 04 or 05
test-exercises: exercises ## the student notebooks (make exercises) execute up to their first exercise
	export TQDM_DISABLE=1 OMP_WAIT_POLICY=PASSIVE
	mkdir -p build
	$(PY) -m pytest tests/exercises -m exercises -q -k "$(EX_LANE_A)" > build/exercises-lane-a.log 2>&1 &
	lane_a=$$!
	status=0
	$(PY) -m pytest tests/exercises -m exercises -q -k "not ($(EX_LANE_A))" || status=$$?
	wait $$lane_a || status=$$?
	echo "--- lane A ($(EX_LANE_A))"; cat build/exercises-lane-a.log
	exit $$status

test-book: book chromium ## open every page of the book in headless Chromium: figures render, no error output
	$(PY) -m pytest tests/book -m book -q

# ---------------------------------------------------------------------------------------------
# teaching

exercises: venv ## write the student notebooks (solutions cleared by nbgrader, no outputs) to build/exercises/ (RUN=quick: reading runs/quick/)
	$(PY) scripts/make_exercises.py $(NB) --out build/exercises $(if $(filter-out default,$(RUN)),--params params/$(RUN).yaml)

book: venv ## build the HTML book from the committed notebooks (never re-executed) into build/book/html/
	rm -rf build/book
	$(PY) -m sphinx -b html -c book -W --keep-going -q . build/book/html
	echo "book: open build/book/html/index.html (the README is its landing page)"

# Debian's chromium package (the browser test never downloads a browser). Needs root, or sudo.
chromium: ## install Chromium for `make test-book` when it is missing (Debian/Ubuntu: apt-get)
	if [[ -n "$${CRAFT_CHROMIUM:-}" ]] || command -v chromium > /dev/null; then exit 0; fi
	if ! command -v apt-get > /dev/null; then
		echo "chromium: not found and no apt-get here; install Chromium and set CRAFT_CHROMIUM=/path/to/chromium" >&2
		exit 1
	fi
	sudo=""; if [[ $$(id -u) != 0 ]]; then sudo="sudo"; fi
	export DEBIAN_FRONTEND=noninteractive
	$$sudo apt-get install -y -q --no-install-recommends chromium > /dev/null \
		|| { $$sudo apt-get update -q > /dev/null && $$sudo apt-get install -y -q --no-install-recommends chromium > /dev/null; }
	echo "chromium: $$(chromium --version)"

# ---------------------------------------------------------------------------------------------
# running the paper

reproduce: venv ## execute every notebook in order into runs/$(RUN)/executed/ (RUN=X: with params/X.yaml)
	if [[ "$(RUN)" != default && ! -f "params/$(RUN).yaml" ]]; then
		echo "reproduce: no params/$(RUN).yaml; RUN is default or the name of a params file:" \
			$$(ls params/*.yaml | xargs -n1 basename | sed 's/\.yaml$$//') >&2
		exit 1
	fi
	mkdir -p runs/$(RUN)/executed runs/$(RUN)/profile
	for nb in $(NB); do
		echo "==> $$nb (RUN=$(RUN))"
		rm -f "runs/$(RUN)/profile/$$(basename "$$nb" .ipynb).jsonl"
		CRAFT_PROFILE="$$PWD/runs/$(RUN)/profile/$$(basename "$$nb" .ipynb).jsonl" $(VENV)/bin/papermill "$$nb" "runs/$(RUN)/executed/$$(basename "$$nb")" -k python3 --log-output \
			$(if $(wildcard params/$(RUN).yaml),$$($(PARAMS_FOR) params/$(RUN).yaml "$$(basename "$$nb" .ipynb)"))
	done
	$(PY) benchmarks/profile_reproduce.py --run-dir runs/$(RUN) --out runs/$(RUN)/profile/profile.json | grep -v '^{'
	echo "reproduce: executed notebooks in runs/$(RUN)/executed/; artifacts under each notebook's run_dir$(if $(wildcard params/$(RUN).yaml), (set in params/$(RUN).yaml), (default runs/default)); figures under figures_dir"

# Target-specific: also applies to the `reproduce` prerequisite, so progress bars never end up in
# the committed outputs (nb-check runs with TQDM_DISABLE=1 too).
notebooks: export TQDM_DISABLE := 1
notebooks: reproduce ## re-run with defaults (RUN=default only), copy back over notebooks/ and strip them
	for nb in $(NB); do
		cp "runs/default/executed/$$(basename "$$nb")" "$$nb"
	done
	$(if $(NB),$(STRIP) $(NB))
	echo "notebooks: refreshed $(words $(NB)) notebooks; review with git diff notebooks/ (from scratch: make section-times)"

section-times: venv ## write the notebooks' header runtimes and section shares from runs/default/executed (a from-scratch run)
	$(PY) scripts/section_times.py runs/default/executed --apply

lab: venv ## open JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab notebooks

lab-student: exercises ## write the student notebooks (make exercises) and open JupyterLab on them
	$(VENV)/bin/jupyter lab build/exercises

instructor-notes: venv ## rewrite docs/instructor-notes.md from the notebooks (a test checks it is current)
	$(PY) scripts/instructor_notes.py

clean: ## remove build/ (runs/ is kept)
	rm -rf build
