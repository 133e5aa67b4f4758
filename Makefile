# Every target that needs the environment sets it up first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
PY := .venv/bin/python
ARGS ?=

.PHONY: setup test lint demo bench

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

# pytest exits 5 when it collected no tests: that is a failure here
test: lint
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

# e.g. make demo ARGS=--text
demo: setup
	bash scripts/demo.sh $(ARGS)

bench: setup
	$(PY) -m bench.run
