#!/usr/bin/env bash
# Runs every Gatehouse check CI runs: gofmt, go vet, and all tests with the
# race detector. Starts (installing if needed) the servers the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

step() { printf '\n== %s\n' "$*"; }

for s in scripts/ensure-*.sh; do
  [ -e "$s" ] || continue
  step "$(basename "$s" .sh)"
  bash "$s"
done
# axe-core for the admin console's browser tests (internal/ui), pinned in
# scripts/axe.sh and cached outside the clone.
GATEHOUSE_TEST_AXE=$(bash scripts/axe.sh)
export GATEHOUSE_TEST_AXE

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...
# The write paths use Linux's pwritev2(RWF_DSYNC) and sync_file_range with
# portable fallbacks beside them: developers on macOS build and test too.
GOOS=darwin go vet ./...

step "supply chain (SBOM, notices, govulncheck, staticcheck, gosec)"
scripts/scan.sh

step "gatehouse policy test policy/"
go run ./cmd/gatehouse policy test policy/

step "deploy/ (helm template, compose)"
scripts/check-deploy.sh

step "go test -race"
go test -race -count=1 -timeout 20m "$@" ./...

if [ $# -eq 0 ]; then
  step "fuzz"
  scripts/fuzz.sh
fi
