# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both install first, so each works alone on a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo lint bench clean wheel-check converter browser

# LibreOffice converts .doc/.wps/.rtf reports (extract/convert.py). A system package, not a pip one:
# `install` only says how to get it; `test` installs it where it can (root with apt-get, as on CI).
HAS_CONVERTER := command -v soffice >/dev/null || command -v libreoffice >/dev/null
CONVERTER_PKG := libreoffice-writer-nogui
CONVERTER_HINT := .doc/.wps reports need LibreOffice: apt-get install --no-install-recommends $(CONVERTER_PKG)

# Chromium renders the static site in tests/test_site.py (playwright drives the system's browser; it never
# downloads its own). Installed like the converter; without it that test is skipped.
HAS_BROWSER := command -v chromium >/dev/null || command -v chromium-browser >/dev/null
BROWSER_PKG := chromium
BROWSER_HINT := the site's browser test needs Chromium: apt-get install --no-install-recommends $(BROWSER_PKG)

install: $(STAMP)
	@$(HAS_CONVERTER) || echo "note: $(CONVERTER_HINT)"
	@$(HAS_BROWSER) || echo "note: $(BROWSER_HINT)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .

converter:
	@if $(HAS_CONVERTER); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing LibreOffice ($(CONVERTER_PKG)) to convert .doc/.wps reports"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(CONVERTER_PKG); } >/dev/null \
			|| echo "note: could not install $(CONVERTER_PKG); the tests that need it are skipped"; \
	else echo "note: $(CONVERTER_HINT); the tests that need it are skipped"; fi

browser:
	@if $(HAS_BROWSER); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium ($(BROWSER_PKG)) for the site's browser test"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BROWSER_PKG); } >/dev/null \
			|| echo "note: could not install $(BROWSER_PKG); the browser test is skipped"; \
	else echo "note: $(BROWSER_HINT); the browser test is skipped"; fi

test: install
	@$(MAKE) --no-print-directory converter
	@$(MAKE) --no-print-directory browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
	$(MAKE) --no-print-directory wheel-check

# The wheel as a user gets it: built, installed into a fresh virtual environment outside the checkout,
# and run from an empty directory there (so nothing of the checkout can be imported by accident).
wheel-check: install
	rm -rf build/wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir build/wheel .
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; wheel=$$(ls build/wheel/govreports-*.whl); \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet "$$wheel"; \
	cd "$$tmp"; export GOVREPORTS_HOME="$$tmp/home"; \
	./venv/bin/govreports --version; \
	sample=$$(./venv/bin/python -c 'from govreports.flows.config import DATA_DIR; print(DATA_DIR / "sample_pages" / "markdown-2021.txt")'); \
	./venv/bin/govreports parse "$$sample" --format csv > parsed.csv; \
	test "$$(wc -l < parsed.csv)" -gt 100; \
	./venv/bin/govreports demo --port 0 --quiet > demo.txt; \
	grep -q "changed" demo.txt; grep -q "宁波市" demo.txt; \
	grep -q "^site: .*index.html" demo.txt; test -s data/warehouse/site/style.css; test -s data/warehouse/site/cjk.otf; \
	echo "wheel-check: $$(basename $$wheel) installed outside the checkout; parse gave $$(($$(wc -l < parsed.csv) - 1)) rows; demo ran"

# The nightly run on the demo site, its comparison, and the static site (its path printed last: site: …)
demo: install
	$(BIN)/govreports demo

bench: install
	$(BIN)/python -m benchmarks.parse_throughput

clean:
	rm -rf $(VENV) data/warehouse .pytest_cache .ruff_cache .hypothesis
