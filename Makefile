# Two commands do everything on a fresh machine:
#   make demo   set up .venv and run several rounds of the loop on BANKING77
#   make test   set up .venv, lint, and run the test suite
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: 2.13.0 is a CPU wheel on disk; a bare "torch" would pull a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/labelloop demo

# mypy covers the pure core: strategies, scores, metrics, gates, aggregation, calibration.
PURE_CORE := quality/agreement.py quality/aggregation.py quality/gates.py quality/drift.py \
	quality/gold.py quality/label_errors.py selection/scores.py selection/auto_accept.py \
	selection/routing.py selection/diversity.py selection/hybrid.py remediate/targets.py \
	prelabel/calibration.py

# The suite runs twice, in two processes at a time (pytest-xdist: each test keeps its own
# home, database and ports): on SQLite files, then on a fresh PostgreSQL database per test
# (127.0.0.1:5432, user postgres). Without a reachable server the second pass is skipped
# with a notice, except under CI (CI=true), where it must run.
PG_PROBE := import psycopg; psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3).close()

# Browser tests drive Debian's chromium (no browser is downloaded): installed here where
# missing, when run as root (CI); otherwise they skip with a notice (CI=true: they fail).
CHROMIUM_SETUP := command -v chromium >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	else echo "no chromium: browser tests will skip (as root: apt-get install -y chromium)"; fi; }

test: $(STAMP)
	@$(CHROMIUM_SETUP)
	$(BIN)/ruff check .
	$(BIN)/mypy $(PURE_CORE)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --durations=15
	@if $(BIN)/python -c '$(PG_PROBE)' 2>/dev/null; then \
		echo "== the suite again, on PostgreSQL =="; \
		LABELLOOP_TEST_DB=postgres HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --durations=15; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "PostgreSQL is not reachable at 127.0.0.1:5432 and CI needs it"; exit 1; \
	else \
		echo "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL pass skipped (see README)"; \
	fi

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf .labelloop demo-output
