#!/usr/bin/env bash
# Tandem's test command (README "Run the tests"; .ci/run calls exactly this).
# On a fresh machine it installs what the tests need, then runs ruff, mypy (strict) and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "Installing redis-server (the test suite runs against a real Redis)…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy (strict: smartapp, launch, fhir_mappings)"
python3 -m mypy
echo "== pytest"
python3 -m pytest "$@"
