#!/bin/sh
# Creates, once, the secrets every Gatehouse replica must share — the
# key-hashing pepper (server.secret) and the JWT signing keys
# (signing-keys.json) — in the `seed` volume, then copies them into each
# replica's data volume mounted under /data/<replica>, owned by the
# gatehouse user (65532) with mode 0600. Runs in the Dockerfile's `seed` target.
set -eu

SEED=${SEED:-/seed}
UID_GID=${UID_GID:-65532:65532}
mkdir -p "$SEED"
chmod 700 "$SEED"

if [ ! -s "$SEED/server.secret" ]; then
	head -c 32 /dev/urandom >"$SEED/server.secret.tmp"
	chmod 600 "$SEED/server.secret.tmp"
	mv "$SEED/server.secret.tmp" "$SEED/server.secret"
	echo "seed: created server.secret"
fi

if [ ! -s "$SEED/signing-keys.json" ]; then
	# Gatehouse writes its signing keys on first start: start it once on a
	# scratch data dir (loopback only, built-in defaults), take the file, stop it.
	tmp=$(mktemp -d)
	cp "$SEED/server.secret" "$tmp/server.secret"
	chmod 600 "$tmp/server.secret"
	GATEHOUSE_DATA_DIR="$tmp" GATEHOUSE_LISTEN=127.0.0.1:18080 GATEHOUSE_ADMIN_LISTEN=127.0.0.1:18081 \
		GATEHOUSE_CONFIG= gatehouse serve >"$tmp/serve.log" 2>&1 &
	pid=$!
	i=0
	while [ ! -s "$tmp/signing-keys.json" ] && [ $i -lt 60 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ ! -s "$tmp/signing-keys.json" ]; then
		echo "seed: gatehouse did not write signing-keys.json; its log:" >&2
		cat "$tmp/serve.log" >&2
		exit 1
	fi
	cp "$tmp/signing-keys.json" "$SEED/signing-keys.json.tmp"
	chmod 600 "$SEED/signing-keys.json.tmp"
	mv "$SEED/signing-keys.json.tmp" "$SEED/signing-keys.json"
	rm -rf "$tmp"
	echo "seed: created signing-keys.json"
fi

for d in /data/*; do
	[ -d "$d" ] || continue
	chown "$UID_GID" "$d"
	chmod 700 "$d"
	for f in server.secret signing-keys.json; do
		cp "$SEED/$f" "$d/.$f.tmp"
		chown "$UID_GID" "$d/.$f.tmp"
		chmod 600 "$d/.$f.tmp"
		mv -f "$d/.$f.tmp" "$d/$f"
	done
	echo "seed: $d ready"
done
