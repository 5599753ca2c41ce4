#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest against PostgreSQL and SQLite.
# Every database test is parametrised over both backends; PostgreSQL is started if it is down.
# Set HUB_TEST_SQLITE_ONLY=1 on a machine without PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

if [ "${HUB_TEST_SQLITE_ONLY:-0}" != "1" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
  fi
  pg_isready -h 127.0.0.1 -p 5432 || {
    echo "PostgreSQL is not reachable at 127.0.0.1:5432; set HUB_TEST_SQLITE_ONLY=1 to run on SQLite alone" >&2
    exit 1
  }
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -rs -p no:cacheprovider "$@"
