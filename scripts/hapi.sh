#!/usr/bin/env bash
# Tandem's registry server (hapi/: HAPI FHIR JPA, R4) as a runnable jar, built once and cached.
#   scripts/hapi.sh build   build the jar unless the cache holds it for this pom.xml and src/; say where it is
#   scripts/hapi.sh path    print the jar's path alone on stdout (building it first if needed)
# The cache: ${XDG_CACHE_HOME:-$HOME/.cache}/tandem/hapi/registry-server-<hash of hapi/pom.xml and hapi/src>.jar;
# Maven keeps its downloads in ~/.m2. Needs a JDK 17 and Maven (installed with apt when missing) and, on the first
# build, Maven Central. sandbox/processes.py::HapiServer runs the jar (or the one TANDEM_HAPI_JAR names).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODULE="$ROOT/hapi"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tandem/hapi"

say() { echo "hapi.sh: $*" >&2; }

source_hash() {
  # Paths relative to hapi/ and each file's sha256: the same sources give the same jar name on any machine.
  (cd "$MODULE" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -c1-16
}

jar_path() { echo "$CACHE/registry-server-$(source_hash).jar"; }

jdk_ok() {
  # java and javac of release 17 or later ("javac 17.0.15" -> 17)
  command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 \
    && [ "$(javac -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p')" -ge 17 ] 2>/dev/null
}

ensure_toolchain() {
  local missing=()
  jdk_ok || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt…"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {
  local jar
  jar="$(jar_path)"
  if [ -f "$jar" ]; then
    say "registry server jar (cached): $jar"
    return 0
  fi
  ensure_toolchain
  mkdir -p "$CACHE"
  # One build at a time (two test runs may start together); the second finds the first one's jar.
  exec 9>"$CACHE/.build.lock"
  flock 9
  if [ -f "$jar" ]; then
    say "registry server jar (cached): $jar"
    return 0
  fi
  say "building the HAPI FHIR registry server (hapi/) with Maven; the first build downloads ~300 MB…"
  local log="$CACHE/build.log" started=$SECONDS
  if ! (cd "$MODULE" && mvn -q -B clean package -DskipTests) >"$log" 2>&1; then
    if grep -qiE "Could not (transfer|resolve)|UnknownHost|Connect(ion)? (refused|timed out)|Network is unreachable|Non-resolvable" "$log"; then
      say "ERROR: Maven could not download HAPI FHIR's libraries: is Maven Central reachable from this machine?"
    else
      say "ERROR: the Maven build of hapi/ failed."
    fi
    say "Maven's output is in $log; its last lines:"
    tail -n 25 "$log" >&2
    return 1
  fi
  cp "$MODULE/target/registry-server.jar" "$jar.tmp.$$"
  mv -f "$jar.tmp.$$" "$jar"
  # Jars of other sources are ~300 MB each: keep the three newest (other work trees may be running theirs).
  ls -1t "$CACHE"/registry-server-*.jar | tail -n +4 | xargs -r rm -f --
  say "built in $((SECONDS - started)) s: $jar"
}

case "${1:-}" in
  build) build ;;
  path) build && jar_path ;;
  *) echo "usage: scripts/hapi.sh build|path" >&2; exit 2 ;;
esac
