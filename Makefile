# The front door: install, run, test, lint, compile, image, bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt only when the package's requirements change.
INSTALLED := $(VENV)/.installed
IMAGE ?= ghcr.io/headstart-ml/headstart:0.1.0
CONTAINER_ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)

.PHONY: install run test lint compile image bench clean

install: $(INSTALLED)

$(INSTALLED): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

run: install
	$(BIN)/headstart run --summary runs/summary.json

test: install
	$(BIN)/python -m pytest tests

lint: install
	$(BIN)/python -m ruff check --isolated --line-length 120 --select E,F,W components pipeline tests

compile: install
	$(BIN)/headstart compile --output pipeline/pipeline.yaml

image:
	$(CONTAINER_ENGINE) build -f docker/Dockerfile -t $(IMAGE) .

bench: install
	$(BIN)/python -m pipeline.bench --output runs/bench.json

clean:
	rm -rf runs serving
