#!/usr/bin/env bash
# ensure-postgres.sh — make sure a PostgreSQL answers on 127.0.0.1:5432 for
# tests, and lets user postgres in without a password (trust), which is what
# the default GATEHOUSE_TEST_POSTGRES DSN expects.
#
# If such a server already answers, do nothing. Otherwise: install the
# postgresql package with apt-get when PostgreSQL is missing; start the
# installed cluster configured on the port if it is down; and if that does
# not give a trusted login (no cluster on the port, or one that demands a
# password), initdb a throwaway cluster with trust auth under /tmp and
# start it on the port (stopping an installed cluster that holds the port).
# Finally wait until pg_isready succeeds. Idempotent; silent on success,
# messages on stderr and a non-zero exit on failure.
set -euo pipefail

HOST=127.0.0.1
PORT=${ENSURE_POSTGRES_PORT:-5432}                             # override only to test this script
THROWAWAY=${ENSURE_POSTGRES_DIR:-/tmp/gatehouse-postgres-$PORT} # data directory of the throwaway cluster

die() { echo "ensure-postgres: $*" >&2; exit 1; }

# answers reports whether anything accepts TCP connections on HOST:PORT.
answers() {
	{ exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
	exec 3>&- 3<&-
}

# bindir prints the bin directory of the newest installed PostgreSQL.
bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [[ -z $d ]] && command -v initdb >/dev/null 2>&1; then
		d=$(dirname "$(readlink -f "$(command -v initdb)")")
	fi
	[[ -n $d ]] && echo "$d"
}

# trusted reports whether user postgres can run a query on HOST:PORT without
# a password.
trusted() {
	local psql
	psql=$(command -v psql || echo "$(bindir)/psql")
	[[ -x $psql ]] || return 1
	PGPASSWORD= PGCONNECT_TIMEOUT=3 "$psql" -XAtq -w \
		"host=$HOST port=$PORT user=postgres dbname=postgres sslmode=disable" \
		-c 'SELECT 1' </dev/null >/dev/null 2>&1
}

# ready waits up to 10 s for pg_isready to succeed.
ready() {
	local isready
	isready=$(command -v pg_isready || echo "$(bindir)/pg_isready")
	for _ in $(seq 1 100); do
		"$isready" -q -h "$HOST" -p "$PORT" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cluster prints "version name status" of the installed (Debian
# postgresql-common) cluster configured on PORT, if there is one.
cluster() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 0
	pg_lsclusters -h 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2, $4; exit }'
}

SUDO=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 && SUDO=sudo
fi

trusted && exit 0

if ! answers; then
	if [[ -z $(bindir) ]]; then
		[[ $(id -u) -eq 0 || -n $SUDO ]] || die "PostgreSQL missing and not root (no sudo) to install it"
		command -v apt-get >/dev/null 2>&1 || die "PostgreSQL missing and apt-get unavailable; install PostgreSQL yourself"
		export DEBIAN_FRONTEND=noninteractive
		$SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
		$SUDO apt-get install -y -qq postgresql >/dev/null 2>&1 || die "apt-get install postgresql failed"
	fi
	read -r ver name status <<<"$(cluster)" || true
	if [[ -n ${ver:-} && ${status:-} != online ]]; then
		$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >/dev/null 2>&1 ||
			echo "ensure-postgres: could not start cluster $ver/$name; trying a throwaway cluster" >&2
	fi
	if answers || [[ -n ${ver:-} ]]; then
		ready || true
	fi
	trusted && exit 0
fi

# Still no trusted login: run a throwaway trust-auth cluster on PORT.
if answers; then
	read -r ver name status <<<"$(cluster)" || true
	[[ -n ${ver:-} ]] || die "something on $HOST:$PORT refuses user postgres without a password, and it is not an installed cluster this script may stop; set GATEHOUSE_TEST_POSTGRES instead"
	echo "ensure-postgres: cluster $ver/$name on port $PORT demands a password; replacing it with a trust-auth cluster in $THROWAWAY" >&2
	$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop >/dev/null 2>&1 || die "could not stop cluster $ver/$name"
fi

BIN=$(bindir) || die "no PostgreSQL binaries found"
# initdb and postgres refuse to run as root: use the postgres OS user.
RUNAS=()
if [[ $(id -u) -eq 0 ]]; then
	id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres ||
		die "could not create OS user postgres"
	RUNAS=(runuser -u postgres --)
fi
mkdir -p "$THROWAWAY"
[[ ${#RUNAS[@]} -eq 0 ]] || chown postgres: "$THROWAWAY"
chmod 700 "$THROWAWAY"
if [[ ! -s $THROWAWAY/PG_VERSION ]]; then
	"${RUNAS[@]}" "$BIN/initdb" -D "$THROWAWAY" -U postgres -A trust -E UTF8 --no-sync >"$THROWAWAY.initdb.log" 2>&1 ||
		die "initdb $THROWAWAY failed; see $THROWAWAY.initdb.log"
fi
if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$THROWAWAY" status >/dev/null 2>&1; then
	"${RUNAS[@]}" "$BIN/pg_ctl" -D "$THROWAWAY" -l "$THROWAWAY/server.log" -w -t 30 \
		-o "-c listen_addresses=$HOST -p $PORT -k $THROWAWAY" start >/dev/null ||
		die "throwaway cluster failed to start; see $THROWAWAY/server.log"
fi
ready || die "PostgreSQL started but pg_isready fails on $HOST:$PORT"
trusted || die "PostgreSQL answers on $HOST:$PORT but refuses user postgres without a password"
