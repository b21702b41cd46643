# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The web pages' libraries (MapLibre GL JS, uPlot), pinned in web/package-lock.json; npm ci
# copies their dist files into src/cityops/web/static/vendor/ (web/vendor.mjs).
WEBSTAMP := web/node_modules/.installed
# Stock third-party clients the interoperability tests drive (ngsildclient), in a venv of their
# own: their pins conflict with CityOps's (see tests/ngsild/clients/requirements.txt).
CLIENTS := .venv-clients
CLIENTSTAMP := $(CLIENTS)/.installed
PACK := var/packs/pudong
DATA := var/demo
PORT ?= 8080
RATE ?= 40000

.PHONY: install demo check test bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(STAMP)

$(CLIENTSTAMP): tests/ngsild/clients/requirements.txt
	$(PY) -m venv $(CLIENTS)
	$(CLIENTS)/bin/pip install --quiet -r tests/ngsild/clients/requirements.txt
	touch $(CLIENTSTAMP)

$(WEBSTAMP): web/package.json web/package-lock.json web/vendor.mjs
	cd web && npm ci --no-audit --no-fund
	touch $(WEBSTAMP)

# The browser tests drive Debian's Chromium; it is installed only when missing (needs root).
/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "Chromium is missing: sudo apt-get install chromium (the browser tests need it)"; fi

# The PDF reports' tests render pages with poppler (pdftoppm, pdftotext); the reports embed a
# CJK font for Chinese area names when one is installed (WenQuanYi Micro Hei).
/usr/bin/pdftoppm:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
		apt-get install -y -qq poppler-utils fonts-wqy-microhei; \
	else echo "poppler is missing: sudo apt-get install poppler-utils fonts-wqy-microhei" \
		"(the report tests need it)"; fi

install: $(STAMP) $(WEBSTAMP) $(CLIENTSTAMP) /usr/bin/chromium /usr/bin/pdftoppm

demo: install
	$(BIN)/cityops demo --pack $(PACK) --data $(DATA) --port $(PORT) --rate $(RATE)

# Lint, types (mypy strict on the domain core and the route layer) and the import contract
# (the domain core imports no I/O); each is configured in pyproject.toml. All three run, and
# any failure fails the target.
check: install
	@status=0; \
	echo "ruff check src tests"; $(BIN)/ruff check src tests || status=1; \
	echo "mypy"; $(BIN)/mypy || status=1; \
	echo "lint-imports"; $(BIN)/lint-imports --no-logo || status=1; \
	exit $$status

# The tests run in one worker process per core (pytest-xdist), up to four: most of a test's
# time is spent in other processes (servers, Chromium) or waiting on them, and every test makes
# its own data folder, PostgreSQL schema, bus stream and port, so none shares state with another.
test: install check
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4

bench: install
	$(BIN)/cityops bench ingest --json

clean:
	rm -rf $(VENV) $(CLIENTS) var .pytest_cache
