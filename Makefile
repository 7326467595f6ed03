# The two commands a newcomer needs: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
# pip warns about every unreachable mirror path; keep the real messages.
QUIET := sed -e "/is ignored/d"
SITE := $(VENV)/lib/python3.11/site-packages

.PHONY: help run test venv system-deps lint test-unit deploy-check bench-quick load-test audit console-screenshots clean \
	images compose-up compose-down docker-engine

help:
	@echo "make run          start Triton + the API on the embedded store, print a console sign-in link and a dev API key"
	@echo "make test         install what is needed, start real servers, run the whole suite"
	@echo "make bench-quick  the key benchmark ratios in under 5 minutes"
	@echo "make load-test    200 concurrent streams for 60 s per engine (CI runs it too)"
	@echo "make lint         ruff and mypy"
	@echo "make images       build every image of the compose file and the chart (installs Docker when missing)"
	@echo "make compose-up   make images, then the whole stack with docker compose; prints the URL and first steps"
	@echo "make compose-down stop the compose stack (keeps its volumes)"
	@echo "make console-screenshots  regenerate docs/console/*.png from the browser tests"

venv: $(STAMP)

# Order matters: torch first (the CPU wheel), else a dependency pulls a multi-GB CUDA build.
$(STAMP): requirements/*.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools 2>&1 | $(QUIET)
	$(PIP) install -q torch==2.13.0 2>&1 | $(QUIET)
	$(PIP) install -q -r requirements/dev.txt -c requirements/lock.txt 2>&1 | $(QUIET)
	@# The wheel that ships a complete tritonserver; its declared deps are not needed to run the binary.
	$(PIP) install -q --no-deps nvidia-pytriton==0.7.0 2>&1 | $(QUIET) -e "/dependency/d" -e "/requires/d"
	$(PIP) install -q --no-deps -e . 2>&1 | $(QUIET)
	@# torchaudio's PyPI build links CUDA; XTTS only uses its pure-Python parts.
	rm -f $(SITE)/torchaudio/lib/*.so
	$(PY) -c "import torch, TTS.tts.models.xtts, tritonclient.grpc, fastapi; assert torch.__version__.startswith('2.13.0')"
	rm -f $(VENV)/.installed-*
	touch $@

# Postgres and Redis servers for the integration tests, Chromium for the console's browser tests (Debian packages).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v redis-server >/dev/null; then \
		echo "installing postgresql and redis-server"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql redis-server >/dev/null; \
	fi
	@if ! command -v chromium >/dev/null; then \
		echo "installing chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

run: venv
	$(VENV)/bin/tts-gateway up

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) -m mypy
	@# Every model.py is a module named `model`: one run each.
	for model in model_repository/*/1/model.py; do $(PY) -m mypy "$$model"; done

test: venv system-deps lint images
	@# Space and load at the start: a run that fails for want of either says so.
	@echo "disk free: $$(df -h --output=avail /tmp | tail -1 | tr -d ' ') in /tmp; load average: $$(cut -d' ' -f1-3 /proc/loadavg)"
	@# The slowest tests are listed before the summary line, so every run's log says where the time goes.
	$(PY) -m pytest -q -p no:cacheprovider --durations=40

# Docker engine + compose plugin (installed and started when missing), then every image, cached.
docker-engine: venv
	scripts/docker-engine.sh --compose $(SITE)/compose/docker-compose

images: venv
	COMPOSE_BIN=$(SITE)/compose/docker-compose scripts/build-images.sh

compose-up: images
	scripts/compose-up.sh

compose-down: docker-engine
	docker compose down

# Chart, manifests and compose file, validated offline (helm, kubectl, kubernetes-validate, compose);
# the tests that run the images (compose stack, chart containers) are in `make test`.
deploy-check: venv
	scripts/install-deploy-tools.sh --python $(PY)
	$(PY) -m pytest tests/deploy -q -p no:cacheprovider \
		--ignore tests/deploy/test_stack.py --ignore tests/deploy/test_chart_containers.py

bench-quick: venv
	$(VENV)/bin/tts-gateway bench quick

# Known vulnerabilities in the pinned lock (pip-audit, PyPI advisories); --strict fails when a package
# could not be checked (e.g. a mirror without PyPI's JSON API) rather than passing vacuously.
audit: venv
	@mkdir -p .cache
	grep -v '^#' requirements/lock.txt | sed 's/+cpu$$//' > .cache/lock-audit.txt
	$(VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r .cache/lock-audit.txt

# 200 concurrent streams held for 60 s through the gateway, per engine: errors, usage, leaks (bench/load_stage.py).
load-test: venv
	$(VENV)/bin/tts-gateway bench load --engine piper --streams 200 --seconds 60
	$(VENV)/bin/tts-gateway bench load --engine xtts --streams 200 --seconds 60

# Screenshots of every console page into docs/console/ (the browser tests, saving as they go).
console-screenshots: venv system-deps
	CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest tests/console -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .cache var .tools
