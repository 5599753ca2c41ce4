.PHONY: demo test test-fast test-sqlite bootstrap lock lint bench

demo: ## run the hub demo on the embedded default (SQLite, simulators, test PKI)
	scripts/bootstrap.sh
	.venv/bin/hub demo

test: ## the whole suite on PostgreSQL and SQLite, plus ruff and mypy
	scripts/test.sh

test-fast: ## quick loop: SQLite only, no lint, stop at the first failure, tests marked slow left out
	HUB_TEST_SQLITE_ONLY=1 .venv/bin/python -m pytest -q -x -p no:cacheprovider -m "not slow" $(ARGS)

test-sqlite: ## the whole suite without PostgreSQL
	HUB_TEST_SQLITE_ONLY=1 scripts/test.sh

bootstrap: ## .venv from requirements-test.lock (hashes checked) plus the hub, editable
	scripts/bootstrap.sh

lock: ## re-pin requirements.lock and requirements-test.lock from pyproject.toml (ARGS=--upgrade for newest releases)
	scripts/lock.sh $(ARGS)

lint: ## ruff, formatting, mypy --strict and the import-layer contracts
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports

bench:
	.venv/bin/python -m benchmarks.bench_delivery
