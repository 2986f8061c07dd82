#!/usr/bin/env bash
# The dbt project on PostgreSQL and on Spark, compared with DuckDB (tests/engines, docs/engines.md).
# Usage: bash .ci/engines.sh [VENV]   (default .venv; the project is already installed in it)
# Installs what is missing: the PostgreSQL server and a Java runtime from Debian, the postgres and
# spark extras into the virtualenv. ENGINES="postgres spark" picks the engines to run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv}"
ENGINES="${ENGINES:-postgres spark}"

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

extras=()
for engine in $ENGINES; do
    case "$engine" in
        postgres)
            if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
                echo "== installing the PostgreSQL server"
                apt_install postgresql
            fi
            extras+=(postgres)
            ;;
        spark)
            if ! command -v java >/dev/null; then
                echo "== installing a Java runtime"
                apt_install openjdk-17-jre-headless
            fi
            extras+=(spark)
            ;;
        *)
            echo "unknown engine '$engine' in ENGINES (use postgres and/or spark)" >&2
            exit 2
            ;;
    esac
done

echo "== installing extras: ${extras[*]}"
"$VENV/bin/pip" install --quiet -e ".[$(IFS=,; echo "${extras[*]}")]"

for engine in $ENGINES; do
    echo "== dbt build on $engine"
    CDP_ENGINE_TESTS=1 "$VENV/bin/python" -m pytest tests/engines -q -m "$engine" -p no:cacheprovider
done
