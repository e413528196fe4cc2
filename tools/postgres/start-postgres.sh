#!/usr/bin/env bash
# start-postgres.sh: idempotently start a private PostgreSQL server on loopback for the `postgres` tests
# (Debian 12, as root); returns once `pg_isready` answers and database `lightsweep` exists, and prints its
# URL last. Env knobs:
#  PG_CI_INSTALL=1       apt-get install the `postgresql` packages if missing
#  PG_CI_INSTALL_ONLY=1  install the packages and stop there (what `make postgres` does)
#  PG_CI_ROOT (default /tmp/pg-ci: data/, socket/, postgres.log)   PG_CI_PORT (default 5433)
#  PG_CI_OPTIONS         extra server options, e.g. "-c fsync=off" (passed to postgres by pg_ctl -o)
# Exit status 2: it cannot run here (not root, packages missing or not installable), 1: it failed.
set -euo pipefail
ROOT=${PG_CI_ROOT:-/tmp/pg-ci}; PORT=${PG_CI_PORT:-5433}; DB=lightsweep; WAIT=${PG_CI_WAIT:-60}
DATA=$ROOT/data; SOCKET=$ROOT/socket
log() { echo "[start-postgres $(date +%T)] $*"; }
die() { echo "[start-postgres] ERROR: $*" >&2; exit 1; }
cannot() { echo "[start-postgres] cannot start: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || cannot "must run as root (it installs Debian packages and runs the server as user postgres)"

if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q 'ok installed'; then
  [ "${PG_CI_INSTALL:-0}" = 1 ] || cannot "package postgresql is not installed (run \`make postgres\` as root)"
  command -v apt-get >/dev/null || cannot "package postgresql is not installed and there is no apt-get (not Debian)"
  log "installing postgresql"   # postinst "could not start service" (no init system) is harmless
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql >/dev/null; } || cannot "apt-get install postgresql failed"
fi
[ "${PG_CI_INSTALL_ONLY:-0}" = 1 ] && { log "packages installed: postgresql"; exit 0; }
id postgres >/dev/null 2>&1 || die "no system user postgres (the postgresql package creates it)"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/pg_ctl" ] || die "no server binaries under /usr/lib/postgresql/*/bin"
as_postgres() { runuser -u postgres -- "$@"; }   # the server refuses to run as root
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; }

mkdir -p "$ROOT" "$SOCKET"; chown postgres:postgres "$ROOT" "$SOCKET"
if [ ! -s "$DATA/PG_VERSION" ]; then
  log "initialising a cluster in $DATA"
  as_postgres "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C --auth=trust >"$ROOT/initdb.log" 2>&1 \
    || die "initdb failed, see $ROOT/initdb.log"
  # trust: password-less for local and 127.0.0.1/::1 connections only (listen_addresses below)
fi
if ready; then
  log "already up on 127.0.0.1:$PORT"
else
  log "starting postgres $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
  # max_connections: every worker's RDB storage keeps a pool, several drivers share one server
  as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$ROOT/postgres.log" -w -t "$WAIT" start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKET -c max_connections=300 ${PG_CI_OPTIONS:-}" >/dev/null \
    || { tail -5 "$ROOT/postgres.log" >&2; die "the server did not start, see $ROOT/postgres.log"; }
  end=$((SECONDS + WAIT))
  until ready; do [ $SECONDS -ge $end ] && die "no answer from 127.0.0.1:$PORT after ${WAIT}s"; sleep 0.2; done
fi
psql() { "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
[ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" = 1 ] || { log "creating database $DB"; psql -c "CREATE DATABASE $DB"; }
echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
