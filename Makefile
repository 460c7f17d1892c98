# The front door: install, run, test, lint, compile, image, rehearse, bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt only when the package's requirements change.
INSTALLED := $(VENV)/.installed
# The image every component names: components/container_image.py's IMAGE.
IMAGE ?= $(shell sed -n 's/^IMAGE = "\(.*\)"$$/\1/p' components/container_image.py)

.PHONY: install run test lint compile image image-gpu rehearse bench bench-scale bench-accuracy clean

install: $(INSTALLED)

$(INSTALLED): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

run: install
	$(BIN)/headstart run --summary runs/summary.json

# --durations: the slowest tests in every log, to keep the whole under 20 minutes on 2 cores.
test: install
	$(BIN)/python -m pytest --durations=25 tests

lint: install
	$(BIN)/python -m ruff check components pipeline benchmarks tests

compile: install
	$(BIN)/headstart compile --output pipeline/pipeline.yaml

# docker when a Docker engine answers, else podman (set up from scratch where missing); see the script.
image:
	IMAGE='$(IMAGE)' bash docker/build_image.sh

# The GPU variant (TensorFlow with its CUDA wheels), tagged $(IMAGE)-gpu; several GB.
image-gpu:
	DOCKERFILE=docker/Dockerfile.gpu IMAGE='$(IMAGE)-gpu' bash docker/build_image.sh

# The pipeline twice as a KFP cluster runs it: each step in its own container with only its own
# artifacts, everything else on gs:// in a Cloud Storage emulator. Needs `make image` first.
rehearse: install
	$(BIN)/python -m pipeline.devtools.rehearse --pipeline-root runs/rehearsal

# The speed and memory table of benchmarks/bench.py (not part of the installed package), saved with
# every figure behind it in runs/bench.json; several minutes on 2 cores.
bench: install
	$(BIN)/python -m benchmarks.bench --output runs/bench.json

# The whole pipeline on 5,000 and 50,000 real-photo variants: per-step time, peak memory, disk.
bench-scale: install
	$(BIN)/python -m benchmarks.scale --output runs/scale.json

# Test accuracy of the defaults and the candidates beside them on ../shared/fixtures/cats_dogs_4k,
# three head seeds each, with each candidate's first-run seconds; about 15 minutes on 2 cores.
bench-accuracy: install
	$(BIN)/python -m benchmarks.accuracy --output runs/accuracy.json

clean:
	rm -rf runs serving
