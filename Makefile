# The README's two commands: `make run` (the main job, embedded) and `make test` (the whole suite).
# Both set themselves up: a .venv with the pinned CPU stack, installed once per change of the requirements.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OMNIRT := $(VENV)/bin/omnirt
STAMP := $(VENV)/.installed
DEMO_MODELS := .omnirt/models
HOST ?= 127.0.0.1
PORT ?= 8000
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: install run demo test lint docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg setup.py requirements-dev.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e '.[runtime,server,services,dev]'
	touch $(STAMP)

install: $(STAMP)

$(DEMO_MODELS)/sd15/model_index.json: $(STAMP)
	$(OMNIRT) make-tiny sd15 $(DEMO_MODELS)/sd15

# The main job: the embedded server (API + in-process workers, no Redis) with tiny demo models built on first run.
run: $(STAMP) $(DEMO_MODELS)/sd15/model_index.json
	$(OMNIRT) serve --host $(HOST) --port $(PORT) --models-dir $(DEMO_MODELS) --artifact-dir outputs

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

clean:
	rm -rf $(VENV) .omnirt outputs .pytest_cache
