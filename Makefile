# The front door of vizeapp. `make run` and `make test` work from a clean clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean messages

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# make run PORT=8001 serves a second copy (see README: it needs data of its own).
PORT ?= 8000

run: $(STAMP)
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py prepare_models
	$(BIN)/python manage.py serve --bind 127.0.0.1:$(PORT)

# Debian's chromium drives the browser tests (a browser download from a CDN fails here):
# installed when make runs as root, asked for otherwise.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium' once, then make test again."; \
		exit 1; \
	fi

# tests/conftest.py compiles the translation catalogues first.
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# Gathers the marked strings of the pages (django.po) and of static/*.js (djangojs.po)
# into locale/'s catalogues. Needs GNU gettext (apt-get install gettext); compiling them
# does not (compile_translations uses Babel).
LANGUAGE_FLAGS := --locale fr --locale zh_Hans --no-obsolete
IGNORED := --ignore .venv --ignore var --ignore bench --ignore tests --ignore 'static/vendor/*'

messages: $(STAMP)
	$(BIN)/python manage.py makemessages $(LANGUAGE_FLAGS) $(IGNORED)
	$(BIN)/python manage.py makemessages --domain djangojs $(LANGUAGE_FLAGS) $(IGNORED)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/train.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python -W ignore bench/grid.py
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) var
