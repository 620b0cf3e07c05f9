# Quick start: `make demo` (set-up, then the main job) and `make test` (set-up, then every test).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DIGITLAB := $(BIN)/digitlab
DEMO_DIR ?= runs/demo
DEMO_EPOCHS ?= 2

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup data browser postgres fonts demo test lint bench bench-speed bench-load serve default-model number-model clean

setup: $(VENV)/.installed data

# The browser test drives Debian's Chromium through playwright (`playwright install` cannot
# download browsers here); install it when it is missing and we may (root, apt).
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } \
	  || echo "warning: $(CHROMIUM) missing; the browser test will be skipped"

# The PostgreSQL study test starts its own server from Debian's postgresql (initdb, pg_ctl in
# /usr/lib/postgresql/*/bin); install it when it is missing and we may (root, apt).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); } \
	  || echo "warning: PostgreSQL's initdb missing; the PostgreSQL study test will be skipped"

# Debian's handwriting fonts: the in-the-wild benchmark's handwriting-fonts condition and the
# robust recipe's styled training digits use them (without them, those digits are continental
# ones instead, and the default model is not the shipped one).
HANDWRITING_FONTS := fonts-dkg-handwriting fonts-breip fonts-bwht fonts-klee fonts-rufscript \
	fonts-sjfonts fonts-yusei-magic fonts-humor-sans
fonts:
	@dpkg -s $(HANDWRITING_FONTS) >/dev/null 2>&1 || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(HANDWRITING_FONTS) >/dev/null); } \
	  || echo "warning: handwriting fonts missing; their tests will be skipped"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev]'
	touch $@

data: $(VENV)/.installed
	$(DIGITLAB) data fetch

demo: setup
	$(DIGITLAB) train --recipe tutorial --epochs $(DEMO_EPOCHS) --out $(DEMO_DIR) --save-model
	$(DIGITLAB) evaluate $(DEMO_DIR)/best.pt --out $(DEMO_DIR)/evaluation
	$(DIGITLAB) plot $(DEMO_DIR)
	$(DIGITLAB) data samples --out $(DEMO_DIR)/samples
	@echo "== the model just trained (plain MNIST, $(DEMO_EPOCHS) epochs) =="
	$(DIGITLAB) classify $(DEMO_DIR)/samples --model $(DEMO_DIR)/best.pt --top-k 2
	@echo "== the model shipped with digitlab (recipe robust) =="
	$(DIGITLAB) classify $(DEMO_DIR)/samples --show $(DEMO_DIR)/show
	@echo
	@echo "Everything is in $(DEMO_DIR)/:"
	@echo "  config.json, metrics.json       settings and measurements"
	@echo "  best.pt, last.pt, mnist_cnn.pt  checkpoints (mnist_cnn.pt: the tutorial's format)"
	@echo "  performance.png                 training loss and test accuracy"
	@echo "  evaluation/                     report.json and confusion.png"
	@echo "  samples/                        user-style images made from MNIST test digits"
	@echo "  show/                           what the shipped model saw and said, per image"

# setup fetched MNIST, so a test that needs it fails here rather than skipping
test: setup browser postgres fonts
	DIGITLAB_REQUIRE_MNIST=1 $(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

bench: setup
	$(BIN)/python benchmarks/pipeline_epoch.py

# Time to 99.2%: the tutorial recipe (DataLoader) against `fast`; ~6 min (QUICK=1: ~2 min).
bench-speed: setup
	$(BIN)/python benchmarks/time_to_accuracy.py $(if $(QUICK),--quick) --readme
	$(BIN)/python benchmarks/inference.py

serve: setup
	$(DIGITLAB) serve

bench-load: setup
	$(BIN)/python benchmarks/load.py --seconds 30

# Regenerates the model shipped inside the package (src/digitlab/weights/default.pt + .json).
default-model: setup fonts
	$(DIGITLAB) train --recipe robust --seed 1 --out runs/default-model --no-progress
	$(DIGITLAB) pack runs/default-model/last.pt --out src/digitlab/weights/default.pt --calibrate

# Regenerates the line reader shipped inside the package (src/digitlab/weights/numbers.pt + .json):
# synthetic number fields only, never real ones (~30 min on 2 cores).
number-model: setup fonts
	$(DIGITLAB) train --recipe numbers --seed 1 --out runs/number-model --no-progress
	$(DIGITLAB) pack runs/number-model/last.pt --out src/digitlab/weights/numbers.pt

clean:
	rm -rf $(VENV) runs .pytest_cache
