#!/usr/bin/env bash
# ensure-redis.sh — make sure a Redis answers on 127.0.0.1:6379 for tests.
#
# If one already answers, do nothing. Otherwise install redis-server with
# apt-get when it is missing, start it daemonized without persistence, and
# wait until `redis-cli ping` answers. Idempotent; silent on success,
# messages on stderr and a non-zero exit on failure.
set -euo pipefail

HOST=127.0.0.1
PORT=${ENSURE_REDIS_PORT:-6379} # override only to test this script

die() { echo "ensure-redis: $*" >&2; exit 1; }

# answers reports whether something speaking RESP answers PING on HOST:PORT,
# without needing redis-cli.
answers() {
	local reply
	{ exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=
	exec 3>&- 3<&-
	[[ $reply == +PONG* ]]
}

answers && exit 0

if ! command -v redis-server >/dev/null 2>&1; then
	SUDO=
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "redis-server missing and not root (no sudo) to install it"
		SUDO=sudo
	fi
	command -v apt-get >/dev/null 2>&1 || die "redis-server missing and apt-get unavailable; install Redis yourself"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
	$SUDO apt-get install -y -qq redis-server >/dev/null || die "apt-get install redis-server failed"
fi

redis-server --daemonize yes --bind "$HOST" --port "$PORT" --save "" --appendonly no >/dev/null ||
	die "redis-server failed to start"

for _ in $(seq 1 100); do
	if redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG; then
		exit 0
	fi
	sleep 0.1
done
die "redis-server started but does not answer on $HOST:$PORT"
