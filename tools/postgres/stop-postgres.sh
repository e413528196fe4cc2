#!/usr/bin/env bash
# stop-postgres.sh [--purge]: stop the server start-postgres.sh started; --purge also wipes $PG_CI_ROOT.
set -uo pipefail
ROOT=${PG_CI_ROOT:-/tmp/pg-ci}; DATA=$ROOT/data
log() { echo "[stop-postgres $(date +%T)] $*"; }
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -s "$DATA/postmaster.pid" ] && [ -x "$BIN/pg_ctl" ]; then
  log "stopping the server of $DATA"   # fast: roll back open transactions, close sessions
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null || log "pg_ctl stop failed"
fi
if [ "${1:-}" = --purge ]; then
  log "purging $ROOT"; rm -rf "$ROOT"
fi
log "done"
