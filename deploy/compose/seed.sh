#!/bin/sh
# Creates, once, the secrets every Gatehouse replica must share — the
# key-hashing pepper (server.secret), the JWT signing keys
# (signing-keys.json) and the audit log's checkpoint signing key
# (audit-log.key, audit-log.pub) — in the `seed` volume, then copies them
# into each replica's data volume mounted under /data/<replica>, owned by the
# gatehouse user (65532): server.secret, signing-keys.json and audit/log.key
# with mode 0600, audit/log.pub 0644. Runs in the Dockerfile's `seed` target.
set -eu

SEED=${SEED:-/seed}
UID_GID=${UID_GID:-65532:65532}
# The replicas' audit checkpoint origin: gatehouse/<database name> by default
# with audit.backend postgres (gatehouse.yaml's DSN names database gatehouse).
# The signing key is made under this name and Gatehouse refuses any other.
AUDIT_ORIGIN=${AUDIT_ORIGIN:-gatehouse/gatehouse}
mkdir -p "$SEED"
chmod 700 "$SEED"

if [ ! -s "$SEED/server.secret" ]; then
	head -c 32 /dev/urandom >"$SEED/server.secret.tmp"
	chmod 600 "$SEED/server.secret.tmp"
	mv "$SEED/server.secret.tmp" "$SEED/server.secret"
	echo "seed: created server.secret"
fi

# take SRC NAME MODE: move a file made by the scratch Gatehouse into the seed.
take() {
	cp "$1" "$SEED/$2.tmp"
	chmod "$3" "$SEED/$2.tmp"
	mv "$SEED/$2.tmp" "$SEED/$2"
	echo "seed: created $2"
}

if [ ! -s "$SEED/signing-keys.json" ] || [ ! -s "$SEED/audit-log.key" ] || [ ! -s "$SEED/audit-log.pub" ]; then
	# Gatehouse writes its signing keys and its audit checkpoint key on first
	# start: start it once on a scratch data dir (loopback only, SQLite, the
	# replicas' audit origin), take the files, stop it.
	tmp=$(mktemp -d)
	cp "$SEED/server.secret" "$tmp/server.secret"
	chmod 600 "$tmp/server.secret"
	printf 'audit:\n  origin: %s\n' "$AUDIT_ORIGIN" >"$tmp/gatehouse.yaml"
	GATEHOUSE_DATA_DIR="$tmp" GATEHOUSE_LISTEN=127.0.0.1:18080 GATEHOUSE_ADMIN_LISTEN=127.0.0.1:18081 \
		GATEHOUSE_CONFIG= gatehouse serve --config "$tmp/gatehouse.yaml" >"$tmp/serve.log" 2>&1 &
	pid=$!
	i=0
	while { [ ! -s "$tmp/signing-keys.json" ] || [ ! -s "$tmp/audit/log.pub" ]; } && [ $i -lt 60 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ ! -s "$tmp/signing-keys.json" ] || [ ! -s "$tmp/audit/log.key" ] || [ ! -s "$tmp/audit/log.pub" ]; then
		echo "seed: gatehouse did not write signing-keys.json and audit/log.key, log.pub; its log:" >&2
		cat "$tmp/serve.log" >&2
		exit 1
	fi
	[ -s "$SEED/signing-keys.json" ] || take "$tmp/signing-keys.json" signing-keys.json 600
	# The key pair goes together: replace both if either is missing.
	if [ ! -s "$SEED/audit-log.key" ] || [ ! -s "$SEED/audit-log.pub" ]; then
		take "$tmp/audit/log.key" audit-log.key 600
		take "$tmp/audit/log.pub" audit-log.pub 644
	fi
	rm -rf "$tmp"
fi

# install SECRET_NAME DEST MODE: copy a seed file into a replica's volume.
install_file() {
	cp "$SEED/$1" "$2.tmp"
	chown "$UID_GID" "$2.tmp"
	chmod "$3" "$2.tmp"
	mv -f "$2.tmp" "$2"
}

for d in /data/*; do
	[ -d "$d" ] || continue
	chown "$UID_GID" "$d"
	chmod 700 "$d"
	for f in server.secret signing-keys.json; do
		install_file "$f" "$d/$f" 600
	done
	mkdir -p "$d/audit"
	chown "$UID_GID" "$d/audit"
	chmod 700 "$d/audit"
	install_file audit-log.key "$d/audit/log.key" 600
	install_file audit-log.pub "$d/audit/log.pub" 644
	echo "seed: $d ready"
done
