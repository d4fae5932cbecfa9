#!/bin/sh
# Installs what capatlas needs and is missing: Debian 12 packages (build
# tools, libraries, nginx, Node.js) and the npm modules of frontend/,
# docker/ (runtime data: the default GeoIP database) and tests/.
# Idempotent: a second run with everything present installs nothing.
#
#   sh docker/install-deps.sh          build + run needs
#   sh docker/install-deps.sh test     also the test peers (chromium, tshark, ndpiReader)
#   sh docker/install-deps.sh bench    and the benchmarks' peers (wrk, PostgreSQL 15)
#
# Used by `make run`, `make test` and the Dockerfile's build stage.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WANT_TEST=${1:-}

PKGS="build-essential pkg-config ca-certificates openssl curl procps
libfcgi-dev libfcgi-bin libpcap-dev libcurl4-openssl-dev libssl-dev liblmdb-dev lmdb-utils
libmaxminddb-dev libjansson-dev libndpi-dev zlib1g-dev libarchive-dev nginx"
if [ "$WANT_TEST" = test ] || [ "$WANT_TEST" = bench ]; then
    PKGS="$PKGS chromium libndpi-bin tshark clang libclang-rt-14-dev zip"
fi
if [ "$WANT_TEST" = bench ]; then
    PKGS="$PKGS wrk postgresql-15 postgresql-client-15"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
# Node may come from Debian (nodejs + npm) or elsewhere; only the commands matter.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
    echo "install-deps: installing Debian packages:$missing"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=sudo
        else
            echo "install-deps: not root and no sudo; please install:$missing" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi

npm_install() {
    dir=$1
    [ -f "$dir/package.json" ] || return 0
    # Reinstall only when the lock file changed since the last install.
    stamp="$dir/node_modules/.capatlas-installed"
    if [ -f "$stamp" ] && [ ! "$dir/package-lock.json" -nt "$stamp" ]; then
        return 0
    fi
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
}

npm_install "$ROOT/docker"
npm_install "$ROOT/frontend"
if [ "$WANT_TEST" = test ] || [ "$WANT_TEST" = bench ]; then
    npm_install "$ROOT/tests"
fi
