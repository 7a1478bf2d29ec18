# Two entry points for a newcomer (see README): `make run` and `make test`.
# Both create ./.venv on first use and reinstall when pyproject.toml or
# constraints.txt changes. Installs are pinned by constraints.txt (pip-compile
# of pyproject.toml's dependencies); `make constraints` refreshes it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PIN_TOOLS := $(VENV)/pin-tools

.PHONY: run test lint install constraints python-check

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || { $(MAKE) --no-print-directory python-check && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# One line whatever is wrong: the shell's "not found" for a missing
# interpreter stays in /dev/null (a missing one is "missing").
python-check:
	@found=$$($(PYTHON) -c 'import sys; print("Python %d.%d" % sys.version_info[:2])' 2>/dev/null); \
	test "$$found" = "Python 3.11" || { \
	  echo "deals-ledger needs Python 3.11; $(if $(PYTHON),'$(PYTHON)' is $${found:-missing},neither python3.11 nor python3 is on PATH): install python3.11 or run make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; }

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/deals-ledger serve

test: lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check domain application projections interface tests benchmarks
	$(VENV)/bin/mypy domain application projections interface

# Re-pin every dependency (after editing pyproject.toml, or to take updates).
constraints: python-check
	test -x $(PIN_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(PIN_TOOLS) && $(PIN_TOOLS)/bin/pip install --quiet pip-tools; }
	$(PIN_TOOLS)/bin/pip-compile --quiet --upgrade --strip-extras --no-emit-index-url \
	  --no-emit-find-links --extra dev --output-file constraints.txt pyproject.toml
