#!/usr/bin/env bash
# Tandem's test command (README "Run the tests"; .ci/run calls exactly this).
# On a fresh machine it installs what the tests need, then runs ruff, mypy (strict) and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components, not mocks: Redis for the stores, Debian's Chromium for the browser tests, Java for Spark.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# A Java runtime for the Spark engine of the measures (Spark in local mode).
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
# Node and npm for fqm-execution, the official eCQM engine the measures are compared with (below).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing ${missing[*]} with apt…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The test extras, the sandbox (sekmet-fhir, Playwright) for the integration and browser tiers, Spark, and gunicorn
# (the server extra: tests/smartapp/test_log_redaction.py runs it to check its access log).
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test,sandbox,spark,server]'

# Tandem's HAPI FHIR JPA server (hapi/) for the tests that run against it: built once into a cache
# (scripts/hapi.sh installs a JDK 17 and Maven when missing; the first build downloads HAPI from Maven Central).
echo "== HAPI FHIR registry server"
if ! scripts/hapi.sh build; then
  echo "Could not build the HAPI FHIR registry server (above: is Maven Central reachable?):" \
       "the tests that run against it will fail." >&2
fi

# fqm-execution, the engine the eCQM authoring tool computes expected results with: the measures' differential test
# (tests/measures/test_against_fqm.py, benchmarks/measures_vs_fqm.py) compares Tandem with it. Installed with npm
# once into a cache (tests/measures/fqm.py finds it there), never into the repository.
FQM_VERSION=1.8.6
FQM_DIR="${TANDEM_FQM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/fqm}"
echo "== fqm-execution $FQM_VERSION"
if [ "$(node -p "require('$FQM_DIR/node_modules/fqm-execution/package.json').version" 2>/dev/null)" != "$FQM_VERSION" ]; then
  mkdir -p "$FQM_DIR"
  [ -f "$FQM_DIR/package.json" ] || echo '{"private": true}' > "$FQM_DIR/package.json"
  if ! (cd "$FQM_DIR" && npm install --no-audit --no-fund --loglevel=error "fqm-execution@$FQM_VERSION" >/dev/null); then
    echo "Could not install fqm-execution $FQM_VERSION with npm (is the npm registry reachable?):" \
         "the measures' differential test will fail." >&2
  fi
fi

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy (strict: smartapp, launch, fhir_mappings)"
python3 -m mypy
echo "== pytest"
python3 -m pytest "$@"
