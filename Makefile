# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACK := var/packs/pudong
DATA := var/demo
PORT ?= 8080
RATE ?= 40000

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/cityops demo --pack $(PACK) --data $(DATA) --port $(PORT) --rate $(RATE)

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/cityops bench ingest --json

clean:
	rm -rf $(VENV) var .pytest_cache
