#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine: system packages, a virtualenv, the hub and its test tools.
# Idempotent: re-running only installs what is missing.
#   scripts/bootstrap.sh           runtime + test dependencies, exactly as pinned in requirements-test.lock
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser of the end-to-end console tests (tests/e2e/); Playwright drives this one
# and never downloads its own (docs/development.md).
APT_PACKAGES=(python3-venv softhsm2 poppler-utils qpdf fonts-liberation2 libreoffice-writer-nogui chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Everything comes from the hash-pinned lock (scripts/lock.sh, `make lock`); the project itself
# is installed editable on top, without resolving anything. Re-runs only when the lock or
# pyproject.toml changed.
LOCK=requirements-test.lock
stamp=.venv/.installed-$(cat "$LOCK" pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing $LOCK into .venv"
  .venv/bin/python -m pip install -q --require-hashes -r "$LOCK"
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  # A dependency declared in pyproject.toml but missing from the lock fails here: run `make lock`.
  .venv/bin/python -m pip check
  rm -f .venv/.installed-*
  touch "$stamp"
fi
