#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 20s under CI, else 5s),
# on top of its committed seed corpus (testdata/fuzz/…).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
default=5s
[ "${CI:-}" = true ] && default=20s
time=${FUZZTIME:-$default}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $target ($pkg) for $time"
    go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$time" 2>&1 | tail -1
  done
done
