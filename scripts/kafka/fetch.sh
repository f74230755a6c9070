#!/usr/bin/env bash
# fetch.sh resolves Apache Kafka's broker jars from Maven Central into a cache
# directory and prints that libs directory. It is idempotent: when the jars
# are already there it returns at once without starting Maven.
#
#   AELP_KAFKA_VERSION  Kafka version (default below)
#   AELP_KAFKA_CACHE    cache root (default $HOME/.cache/aelp)
#
# Needs Java 17+ (to run the broker) and Maven (to resolve the jars); no
# Docker. Progress goes to stderr, the libs directory alone to stdout.
set -euo pipefail

version="${AELP_KAFKA_VERSION:-4.4.0}"
cache="${AELP_KAFKA_CACHE:-$HOME/.cache/aelp}"
dir="$cache/kafka-$version"
libs="$dir/libs"
stamp="$dir/.complete"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -f "$stamp" && -d "$libs" ]]; then
  echo "$libs"
  exit 0
fi

command -v java >/dev/null || { echo "fetch.sh: java not found (Kafka $version needs Java 17+)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetch.sh: mvn not found (needed to resolve Kafka $version from Maven Central)" >&2; exit 1; }

mkdir -p "$dir"
# Resolve into a fresh directory and rename it into place, so an
# interrupted run never leaves a half-filled libs directory behind.
tmp="$(mktemp -d "$dir/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: resolving org.apache.kafka:kafka_2.13:$version into $libs" >&2
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" \
  -Dkafka.version="$version" \
  -DoutputDirectory="$tmp" \
  dependency:copy-dependencies >&2
if ! ls "$tmp"/kafka_2.13-"$version".jar >/dev/null 2>&1; then
  echo "fetch.sh: kafka_2.13-$version.jar missing after resolution" >&2
  exit 1
fi
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
touch "$stamp"
echo "$libs"
