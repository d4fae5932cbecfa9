#!/bin/bash
# Starts capatlas in the foreground: capatlasd (the FastCGI supervisor and
# its workers) and nginx (TLS on :9877).  Used by `make run`, by the test
# harness (tests/lib/server.mjs) and as the Docker image's entrypoint.
# SIGINT/SIGTERM stop both cleanly; running it again reuses the data folder
# and the certificate.
#
# Settings: environment variables, or the configuration file named by
# CAPATLAS_CONFIG (keys = the names below without CAPATLAS_, in lower case;
# the environment wins).  `capatlasd check` validates them all first and
# names any bad one; see `capatlasd check --help` for the full list.
#   CAPATLAS_CONFIG          configuration file          (none)
#   CAPATLAS_DATA            data folder                 (default: <repo>/var)
#   CAPATLAS_PORT            HTTPS port                  (9877)
#   CAPATLAS_LISTEN          listen address              (0.0.0.0)
#   CAPATLAS_CERT, _KEY      PEM certificate and key     (generated self-signed in <data>/tls/)
#   CAPATLAS_GEO_DB          .mmdb country database      (the bundled CC0 one)
#   CAPATLAS_API_WORKERS     FastCGI workers             (2)
#   CAPATLAS_IMPORT_WORKERS  import workers              (1)
#   CAPATLAS_MAX_UPLOAD      largest upload, nginx size  (20g)
#   CAPATLAS_ACCESS_LOG      nginx access log            (<data>/log/access.log; /dev/stdout in the image)
#   CAPATLAS_ADMIN_PASSWORD / CAPATLAS_ADMIN_PASSWORD_FILE
#                            first admin's password      (generated and printed once)
#   CAPATLAS_LOGIN_RATE, _BURST  nginx limit on logins per client address (30r/m, 10)
#   CAPATLAS_RUN_USER        when started as root, the unprivileged user
#                            that runs capatlasd and nginx's workers (capatlas)
#   CAPATLAS_BIN, CAPATLAS_WEBROOT   build outputs to use (build/capatlasd, frontend/dist)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CAPATLAS_BIN:-$ROOT/build/capatlasd}

say() { echo "capatlas: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$BIN" ] || die "no capatlasd binary at $BIN (run make build)"
# One configuration for this script and capatlasd: check validates the
# file, the environment and the files they name, and prints the settings
# that are not defaults as assignments (environment over file).
CHECKED=$("$BIN" check --print-env) || die "fix the configuration above (capatlasd check)"
set -a
eval "$CHECKED"
set +a
# capatlasd gets every setting through the environment now; the file may
# not be readable by the unprivileged user.
unset CAPATLAS_CONFIG

DATA=${CAPATLAS_DATA:-$ROOT/var}
PORT=${CAPATLAS_PORT:-9877}
LISTEN=${CAPATLAS_LISTEN:-0.0.0.0}
WEBROOT=${CAPATLAS_WEBROOT:-$ROOT/frontend/dist}
GEO_DB=${CAPATLAS_GEO_DB-$ROOT/docker/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb}
MAX_UPLOAD=${CAPATLAS_MAX_UPLOAD:-20g}
RUN_USER=${CAPATLAS_RUN_USER:-capatlas}

case "$PORT" in ''|*[!0-9]*) die "CAPATLAS_PORT must be a port number, not '$PORT'" ;; esac
[ -f "$WEBROOT/index.html" ] || die "no built frontend at $WEBROOT (run make frontend)"
command -v nginx >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null 2>&1 || die "nginx is not installed"

mkdir -p "$DATA" && DATA=$(cd "$DATA" && pwd)
mkdir -p "$DATA"/{run,log,tls,nginx,tmp/body,tmp/proxy,tmp/fastcgi,tmp/uwsgi,tmp/scgi,bin,www}

# The certificate: the configured one, or a self-signed one made once.
CERT=${CAPATLAS_CERT:-$DATA/tls/cert.pem}
KEY=${CAPATLAS_KEY:-$DATA/tls/key.pem}
if [ -z "${CAPATLAS_CERT:-}" ] && [ ! -s "$CERT" ]; then
    say "creating a self-signed certificate in $DATA/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$KEY" -out "$CERT" 2>/dev/null
    chmod 600 "$KEY"
fi
[ -n "${CAPATLAS_CERT:-}" ] && [ -z "${CAPATLAS_KEY:-}" ] && die "CAPATLAS_KEY: set it with CAPATLAS_CERT"
[ -r "$CERT" ] || die "CAPATLAS_CERT: cannot read $CERT"
[ -r "$KEY" ] || die "CAPATLAS_KEY: cannot read $KEY"

# Run as an unprivileged user when started as root.  The binary, the
# frontend and the geo database are copied into the data folder so that
# user can read them wherever the checkout lives (e.g. under /root).
cp -f "$BIN" "$DATA/bin/capatlasd.new" && mv -f "$DATA/bin/capatlasd.new" "$DATA/bin/capatlasd"
rm -rf "$DATA/www.new" && cp -r "$WEBROOT" "$DATA/www.new" && rm -rf "$DATA/www" && mv "$DATA/www.new" "$DATA/www"
if [ -n "$GEO_DB" ]; then
    [ -r "$GEO_DB" ] || die "CAPATLAS_GEO_DB: cannot read $GEO_DB"
    mkdir -p "$DATA/geo" && cp -f "$GEO_DB" "$DATA/geo/country.mmdb"
    GEO_DB=$DATA/geo/country.mmdb
fi
USER_LINE=""
AS_USER=()
if [ "$(id -u)" = 0 ]; then
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
    fi
    chown -R "$RUN_USER:" "$DATA"
    chown root: "$DATA/tls" && chmod 700 "$DATA/tls"
    USER_LINE="user $RUN_USER $(id -gn "$RUN_USER");"
    AS_USER=(setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups --)
fi
chmod 700 "$DATA/run"

# nginx configuration from the template.
sed -e "s|@DATA@|$DATA|g" -e "s|@PORT@|$PORT|g" -e "s|@LISTEN@|$LISTEN|g" \
    -e "s|@CERT@|$CERT|g" -e "s|@KEY@|$KEY|g" -e "s|@WEBROOT@|$DATA/www|g" \
    -e "s|@SOCKET@|$DATA/run/fcgi.sock|g" -e "s|@MAX_UPLOAD@|$MAX_UPLOAD|g" \
    -e "s|@ACCESS_LOG@|${CAPATLAS_ACCESS_LOG:-$DATA/log/access.log}|g" \
    -e "s|@LOGIN_RATE@|${CAPATLAS_LOGIN_RATE:-30r/m}|g" -e "s|@LOGIN_BURST@|${CAPATLAS_LOGIN_BURST:-10}|g" \
    -e "s|@USER_LINE@|$USER_LINE|g" "$ROOT/nginx/capatlas.conf.in" >"$DATA/nginx/nginx.conf"
nginx -e stderr -t -q -p "$DATA/nginx" -c "$DATA/nginx/nginx.conf" -g 'daemon off;' ||
    die "nginx rejected the configuration ($DATA/nginx/nginx.conf)"

export CAPATLAS_DATA="$DATA" CAPATLAS_SOCKET="$DATA/run/fcgi.sock" CAPATLAS_GEO_DB="$GEO_DB"
export CAPATLAS_API_WORKERS=${CAPATLAS_API_WORKERS:-2} CAPATLAS_IMPORT_WORKERS=${CAPATLAS_IMPORT_WORKERS:-1}

# The first admin account (prints its credentials once).  A password file
# (e.g. a Docker secret) that only root may read is passed through a pipe.
if [ -n "${CAPATLAS_ADMIN_PASSWORD_FILE:-}" ] && [ -z "${CAPATLAS_ADMIN_PASSWORD:-}" ] && [ ${#AS_USER[@]} -gt 0 ]; then
    [ -r "$CAPATLAS_ADMIN_PASSWORD_FILE" ] || die "CAPATLAS_ADMIN_PASSWORD_FILE: cannot read $CAPATLAS_ADMIN_PASSWORD_FILE"
    cat "$CAPATLAS_ADMIN_PASSWORD_FILE" |
        "${AS_USER[@]}" env CAPATLAS_ADMIN_PASSWORD_FILE=/dev/stdin "$DATA/bin/capatlasd" user init-admin --data "$DATA"
else
    "${AS_USER[@]}" "$DATA/bin/capatlasd" user init-admin --data "$DATA"
fi

PIDS=()
stop() {
    trap - INT TERM
    say "stopping"
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    exit "${1:-0}"
}
trap stop INT TERM

"${AS_USER[@]}" "$DATA/bin/capatlasd" serve --data "$DATA" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$DATA/run/fcgi.sock" ] && break; sleep 0.1; done
[ -S "$DATA/run/fcgi.sock" ] || { say "capatlasd did not open its socket"; stop 1; }
nginx -e stderr -p "$DATA/nginx" -c "$DATA/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

HOSTNAME_SHOWN=$LISTEN
[ "$LISTEN" = 0.0.0.0 ] && HOSTNAME_SHOWN=localhost
say "serving https://$HOSTNAME_SHOWN:$PORT (data in $DATA); Ctrl-C stops"

# When either process exits, stop the other.
set +e
wait -n "${PIDS[@]}"
st=$?
# capatlasd and nginx exit 0 only when asked to stop (e.g. Ctrl-C reaches the
# whole process group before this shell's trap runs): that is a clean stop.
[ "$st" -eq 0 ] && stop 0
say "a server process exited with status $st; stopping the rest"
stop 1
