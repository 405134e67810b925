# Sourced by ./dmap and ./run-tests: finds a JDK 25 or newer and exports JAVA_HOME, or fails with what to do.
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
find_jdk() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25* /usr/lib/jvm/*-25* /usr/lib/jvm/*; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    local v; v=$(java_major "$c")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then echo "$c"; return 0; fi
  done
  return 1
}
if ! JAVA_HOME=$(find_jdk); then
  echo "dmap: needs a JDK 25 or newer (with javac); none found in \$JAVA_HOME or /usr/lib/jvm." >&2
  echo "      Install one (Debian: apt-get install temurin-25-jdk, or openjdk-25-jdk) or set JAVA_HOME." >&2
  exit 1
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"
# Maven's bundled Guava warns about sun.misc.Unsafe on JDK 25; that is Maven's, not ours.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
if ! command -v mvn >/dev/null 2>&1; then
  echo "dmap: needs Maven (mvn) to build; install it (Debian: apt-get install maven)." >&2
  exit 1
fi
