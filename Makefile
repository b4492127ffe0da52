# The two commands a newcomer needs: `make demo` and `make test`. Everything they need is
# installed here, never by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps check test demo bench format clean

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian's real Prometheus and Alertmanager serve the lab. Installed when missing, as root, on
# Debian/Ubuntu; anywhere else we say what to install instead of guessing.
system-deps:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null \
	    && (command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null); then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's prometheus and prometheus-alertmanager"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager >/dev/null; \
	else \
	  echo "opsbot's lab needs Prometheus (prometheus, promtool) and Alertmanager on PATH." >&2; \
	  echo "On Debian/Ubuntu run as root: apt-get install --no-install-recommends prometheus prometheus-alertmanager" >&2; \
	  echo "Elsewhere install them from https://prometheus.io/download/ and re-run make." >&2; \
	  exit 1; \
	fi

check: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check
	$(BIN)/pytest -q

demo: setup
	$(BIN)/opsbot demo

# Not a test: times the deterministic diagnosis over scenarios/*.yaml, then measures the agent
# (model calls, prompt size, fallback time) on the scripted ones (bench/README.md).
bench: setup
	$(BIN)/python bench/diagnose.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/slack_ack.py

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
