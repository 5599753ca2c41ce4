#!/usr/bin/env bash
# Regenerate the hash-pinned lock files from pyproject.toml (docs/development.md, "Lock files").
#   scripts/lock.sh                              keep current pins, add/drop what pyproject.toml changed
#   scripts/lock.sh --upgrade                    every package to the newest release pyproject.toml allows
#   scripts/lock.sh --upgrade-package zeep       one package (arguments go to `uv pip compile`)
# requirements.lock: runtime (the Docker image); requirements-test.lock: runtime + the `test`
# extra (scripts/bootstrap.sh, so `make test` and CI), constrained to the runtime pins;
# requirements-bench.lock: that + the `bench` extra (peers of benchmarks/bench_e2e.py --table),
# constrained to the test pins. All also pin pip and the build backend, so the project itself
# is built without unpinned downloads.
# uv runs from a throwaway virtualenv; nothing is installed into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON="${PYTHON:-python3}"
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
"$PYTHON" -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install -q "uv==$UV_VERSION"

# pip and [build-system].requires, pinned beside the dependencies.
"$tool/venv/bin/python" - >"$tool/build.in" <<'EOF'
import tomllib

with open("pyproject.toml", "rb") as f:
    requires = tomllib.load(f)["build-system"]["requires"]
print("\n".join(["pip", *requires]))
EOF

compile() {
  UV_NO_CONFIG=1 "$tool/venv/bin/uv" pip compile --quiet --universal --python-version 3.11 \
    --generate-hashes --custom-compile-command "make lock" pyproject.toml "$tool/build.in" "$@"
}
compile -o requirements.lock "$@"
compile --extra test -c requirements.lock -o requirements-test.lock "$@"
compile --extra test --extra bench -c requirements-test.lock -o requirements-bench.lock "$@"
# The annotations name the temporary input file; say what it holds instead.
sed -i "s|-r $tool/build.in|pip and build-system.requires (pyproject.toml)|" \
  requirements.lock requirements-test.lock requirements-bench.lock
echo "lock: wrote requirements.lock ($(grep -c '^[a-z0-9]' requirements.lock) packages)," \
  "requirements-test.lock ($(grep -c '^[a-z0-9]' requirements-test.lock) packages)" \
  "and requirements-bench.lock ($(grep -c '^[a-z0-9]' requirements-bench.lock) packages)"
