# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080
# Two stamps: `make run` installs only what serving needs (SERVE_STAMP, the base
# dependencies), `make test` and the other developer targets add the dev extras (STAMP;
# its name is kept so `make .venv/.installed` still gives a full development venv).
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres lint format migrate demo sweep clean bench soak

$(SERVE_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A current pip: the one Python 3.11 bundles resolves slower and misses the newer cache.
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.'
	@touch $(SERVE_STAMP)

$(STAMP): $(SERVE_STAMP)
	$(PY) -m pip install --quiet '.[dev]'
	@touch $(STAMP)

# DJANGO_DEBUG=1 lets the local server run without a DJANGO_SECRET_KEY.
# ETHER_WEBHOOK_ALLOW_PRIVATE=1: a webhook receiver on this machine (loopback) is allowed.
run: export DJANGO_DEBUG ?= 1
run: export ETHER_WEBHOOK_ALLOW_PRIVATE ?= 1
run: export PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/var/metrics
run: $(SERVE_STAMP)
ifneq ($(filter-out 1,$(WORKERS)),)
	@# `make run WORKERS=N`: N daphne processes behind haproxy on $(HOST):$(PORT), on Postgres +
	@# Redis (refused without DATABASE_URL and REDIS_URL); migrates, seeds, starts the
	@# workers once, stops everything on Ctrl-C (ether_site/cluster.py, docs/deploy.md).
	@$(PY) -m ether_site.cluster --workers $(WORKERS) -b $(HOST) -p $(PORT)
else
	$(PY) manage.py migrate --no-input -v0
	@$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	@# Metrics of the server and the sweeper add up through one directory (api/metrics.py);
	@# it starts empty, so counters start at zero with the processes.
	@mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db
	@# ether_site.serve is daphne with secrets redacted from its access log (?token=…).
	@# No --http-timeout: it would cut SSE streams. 24 h for idle WebSockets, on purpose.
	@$(PY) manage.py sweep_leases > var/sweep.log 2>&1 & echo $$! > var/sweep.pid; \
	$(PY) manage.py send_webhooks > var/webhooks.log 2>&1 & echo $$! > var/webhooks.pid; \
	$(PY) manage.py sweep_verifications > var/sweep-verify.log 2>&1 & echo $$! > var/sweep-verify.pid; \
	trap 'kill $$(cat var/sweep.pid) $$(cat var/webhooks.pid) $$(cat var/sweep-verify.pid) 2>/dev/null' EXIT INT TERM; \
	$(PY) -m ether_site.serve -b $(HOST) -p $(PORT) --websocket_timeout 86400 \
	  --no-server-name ether_site.asgi:application
endif

# The demo harness (on ether_client, docs/harness-client.md) against the server `make run`
# started (task, key and app from var/demo.json); `make demo ARGS=--ask` stops to ask a
# question on the task page first; `make demo ARGS="--next --ask"` waits for any ready task.
demo: export DJANGO_DEBUG ?= 1
demo: $(SERVE_STAMP)
	$(PY) manage.py demo_harness $(ARGS)

# axe-core for the browser walk's accessibility check (tests/browser/test_walk.py), from
# its npm package; without npm the walk skips and says why.
AXE := var/node/node_modules/axe-core/axe.min.js
$(AXE):
	-@command -v npm >/dev/null 2>&1 && npm install --silent --no-audit --no-fund --prefix var/node axe-core@4 \
	  || echo "axe-core not installed (npm missing or offline): the page walk will be skipped"

test: export DJANGO_DEBUG ?= 1
test: $(STAMP) $(AXE)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run -v0
	$(VENV)/bin/pytest

# The same suite against the Postgres and Redis of this machine (see README).
test-postgres: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ether
test-postgres: export REDIS_URL ?= redis://127.0.0.1:6379/0
test-postgres: test

# Benchmarks against real daphne processes (docs/performance.md): all of them, or some
# (`make bench BENCH="fanout api"`), or a seconds-long smoke run (`make bench QUICK=1`).
bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH)

# 30 minutes of steady mixed load on a real daphne (README, Reliability); SOAK_SECONDS=180
# for a short run.
soak: export DJANGO_DEBUG ?= 1
soak: $(STAMP)
	ETHER_SOAK_SECONDS=$(or $(SOAK_SECONDS),1800) $(VENV)/bin/pytest -m soak -s tests/reliability/test_soak.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var staticfiles
