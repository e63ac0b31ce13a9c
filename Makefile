# keybuzz-tui: the two commands the README starts with, and their building blocks.
# Everything lands in .venv; nothing is installed system-wide except Debian packages by .ci/run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STATE  ?= .sandbox
SCENARIO ?= healthy
PYTEST_ARGS ?=

.PHONY: demo sandbox test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# The wizard in demo mode on the embedded sandbox world (no cloud account needed).
demo: $(STAMP)
	$(BIN)/keybuzz-tui --demo --scenario $(SCENARIO)

# The sandbox on its own, for kubectl / hcloud experiments: see README "The sandbox".
sandbox: $(STAMP)
	$(BIN)/keybuzz-tui sandbox --state-dir $(STATE) --scenario $(SCENARIO)

# The whole suite, as CI runs it. The real Secret Service runs in a private D-Bus session.
test: $(STAMP)
	$(BIN)/python -m ruff check keybuzz_tui screens tests bench
	scripts/with-keyring $(BIN)/pytest -n 2 -rs $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n 2 -m "not kubectl and not tmux and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check keybuzz_tui screens tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(STATE) build *.egg-info
