# leanlambda: every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo
DEMO_FUNCTION := $(DEMO)/my-function
PYTEST_WORKERS ?= 2

.PHONY: help demo test reliability bench lint examples clean

help:
	@echo "make demo         generate a function with defaults, test, package, invoke it cold (and once failing), review it"
	@echo "make test         the whole test suite (starts its own throwaway PostgreSQL)"
	@echo "make reliability  the fault, load and hostile-input suites"
	@echo "make bench        side-by-side benchmarks, written to docs/benchmarks.md"
	@echo "make examples     regenerate the template-owned files of every example"
	@echo "make lint         ruff check and ruff format --check over everything, mypy --strict over the toolkit"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/leanlambda new $(DEMO) --no-input
	cd $(DEMO_FUNCTION) && $(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider
	$(BIN)/leanlambda package $(DEMO_FUNCTION)
	$(BIN)/leanlambda invoke $(DEMO_FUNCTION) --event $(DEMO_FUNCTION)/events/event.json --moto
	@echo "A failed run (an invalid event): PipelineFailed, shown as Lambda reports it; exit 1 is expected"
	printf '{"items": "not a list"}\n' > $(DEMO)/invalid-event.json
	! $(BIN)/leanlambda invoke $(DEMO_FUNCTION) --event $(DEMO)/invalid-event.json --moto
	$(BIN)/leanlambda review $(DEMO_FUNCTION)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m "not reliability"

reliability: $(STAMP)
	HYPOTHESIS_PROFILE=reliability $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q \
		-m "reliability or slow" tests/test_reliability_faults.py tests/test_reliability_load.py \
		tests/test_property_bake.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --markdown docs/benchmarks.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

examples: $(STAMP)
	$(BIN)/python examples/regenerate.py

clean:
	rm -rf build $(VENV) .pytest_cache .ruff_cache
