# Volunteer Cloud: `make run` serves the portal with demo data, `make test` runs every test.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
PORT ?= 8080

.PHONY: run test test-fast demo translations babel-extract clean zh

$(BIN)/activate: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/activate

translations: $(BIN)/activate
	$(BIN)/pybabel compile -f -d translations -D messages -l zh >/dev/null

demo: $(BIN)/activate translations
	$(FLASK) demo

run: demo
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

test: $(BIN)/activate translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/activate translations
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

babel-extract: $(BIN)/activate
	$(BIN)/pybabel extract -F translations/babel.cfg -k lazy_gettext -k gettext -k _ -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -D messages -l zh --no-fuzzy-matching --ignore-pot-creation-date --ignore-obsolete

clean:
	rm -rf $(VENV) instance/*.db

# Merge new msgids and translations: make zh ZH=/path/to/new.json (serialised with flock).
zh: $(BIN)/activate
	flock /tmp/vc-translations.lock sh -c '$(MAKE) -s babel-extract && $(BIN)/python tools/fill_zh.py $(if $(ZH),--from $(ZH)) && $(MAKE) -s translations'
