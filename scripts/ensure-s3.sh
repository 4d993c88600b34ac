#!/usr/bin/env bash
# ensure-s3.sh — make sure an S3-speaking server answers on 127.0.0.1:9878
# for the backup tests (GATEHOUSE_TEST_S3 names it to them).
#
# The server is gofakes3 (github.com/johannesboyne/gofakes3, MIT), built
# from the Go module proxy with `go install` and run as a separate process
# with its in-memory backend and buckets made on first use. MinIO's server
# is AGPL, so it is not used. If something already answers on the port, do
# nothing. Idempotent; silent on success, messages on stderr and a non-zero
# exit on failure.
set -euo pipefail

HOST=127.0.0.1
PORT=${ENSURE_S3_PORT:-9878} # override only to test this script
VERSION=v1.2.0
BIN_DIR=${ENSURE_S3_BIN:-/tmp/gatehouse-gofakes3-$VERSION}
LOG=/tmp/gatehouse-gofakes3-$PORT.log

die() { echo "ensure-s3: $*" >&2; exit 1; }

answers() {
	{ exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
	exec 3>&- 3<&-
}

answers && exit 0

if [[ ! -x $BIN_DIR/gofakes3 ]]; then
	command -v go >/dev/null 2>&1 || die "go is not on PATH"
	GOBIN=$BIN_DIR go install "github.com/johannesboyne/gofakes3/cmd/gofakes3@$VERSION" ||
		die "go install gofakes3@$VERSION failed"
fi

# setsid: the server outlives this script (and the test run that started it).
setsid "$BIN_DIR/gofakes3" -host "$HOST:$PORT" -backend memory -autobucket -quiet >"$LOG" 2>&1 < /dev/null &

for _ in $(seq 1 100); do
	answers && exit 0
	sleep 0.1
done
die "gofakes3 did not answer on $HOST:$PORT in 10 s; see $LOG"
