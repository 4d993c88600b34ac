#!/usr/bin/env bash
# axe.sh — install axe-core (exact pinned version) with npm into a cache
# dir outside the clone, if not there yet, and print the path of its
# axe.min.js (what GATEHOUSE_TEST_AXE points the browser tests at).
set -euo pipefail

AXE_VERSION=4.14.1
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/npm/axe-core@$AXE_VERSION
FILE=$DIR/node_modules/axe-core/axe.min.js

die() { echo "axe: $*" >&2; exit 1; }

if [[ ! -f $FILE ]]; then
	command -v npm >/dev/null 2>&1 || die "npm missing: install nodejs/npm to run the browser tests' accessibility checks"
	mkdir -p "$DIR"
	npm install --silent --no-audit --no-fund --prefix "$DIR" "axe-core@$AXE_VERSION" >&2 || die "npm install axe-core@$AXE_VERSION failed"
fi
[[ -f $FILE ]] || die "$FILE missing after npm install"
echo "$FILE"
