#!/usr/bin/env bash
# ensure-pgclient.sh — make sure pg_dump and pg_restore are installed: the
# backup of a PostgreSQL store runs them (and its tests do). Installs
# Debian's postgresql-client when either is missing (on PATH or in
# /usr/lib/postgresql/*/bin). Idempotent; silent on success, messages on
# stderr and a non-zero exit on failure.
set -euo pipefail

die() { echo "ensure-pgclient: $*" >&2; exit 1; }

have() {
	command -v "$1" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}

have pg_dump && have pg_restore && exit 0

SUDO=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || die "pg_dump missing and not root (no sudo) to install it"
	SUDO=sudo
fi
command -v apt-get >/dev/null 2>&1 || die "pg_dump missing and apt-get unavailable; install the PostgreSQL client yourself"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
$SUDO apt-get install -y -qq postgresql-client >/dev/null 2>&1 || die "apt-get install postgresql-client failed"
have pg_dump && have pg_restore || die "postgresql-client installed but pg_dump or pg_restore is still missing"
