#!/usr/bin/env bash
# ensure-chromium.sh — make sure Debian's chromium is installed for the
# admin console's browser tests (internal/ui), and axe-core, pinned, in a
# cache dir outside the clone (scripts/test.sh exports its path as
# GATEHOUSE_TEST_AXE). Idempotent; silent on success, messages on stderr
# and a non-zero exit on failure.
set -euo pipefail

die() { echo "ensure-chromium: $*" >&2; exit 1; }

if [[ ! -x /usr/bin/chromium ]]; then
	SUDO=
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "chromium missing and not root (no sudo) to install it"
		SUDO=sudo
	fi
	command -v apt-get >/dev/null 2>&1 || die "chromium missing and apt-get unavailable; install it yourself"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
	$SUDO apt-get install -y -qq chromium >/dev/null || die "apt-get install chromium failed"
fi

bash "$(dirname "$0")/axe.sh" >/dev/null
