#!/usr/bin/env bash
# Builds the gatehouse binary with its version, commit and build date
# stamped in (`gatehouse version`, the admin listener's /health). Each can
# be given in the environment (the Dockerfile passes its build args):
#   VERSION  default: git describe --tags --always --dirty, else "dev"
#   COMMIT   default: git rev-parse HEAD, else "unknown"
#   DATE     default: the commit's time (reproducible), else
#            SOURCE_DATE_EPOCH, else now; RFC 3339, UTC
#   OUT      default: ./gatehouse
#   SBOM     default: OUT.cdx.json, the binary's CycloneDX SBOM
#            (cyclonedx-gomod app -licenses); "none" skips it
# Extra arguments go to `go build` (e.g. -race).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

git_() { git "$@" 2>/dev/null || true; }
VERSION=${VERSION:-$(git_ describe --tags --always --dirty)}
COMMIT=${COMMIT:-$(git_ rev-parse HEAD)}
if [ -z "${DATE:-}" ]; then
  DATE=$(TZ=UTC git_ log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
fi
if [ -z "$DATE" ] && [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
fi
DATE=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

# Pure Go (modernc.org/sqlite): a static binary unless CGO_ENABLED is set.
CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${VERSION:-dev} -X main.commit=${COMMIT:-unknown} -X main.date=$DATE" \
  -o "${OUT:-gatehouse}" "$@" ./cmd/gatehouse

SBOM=${SBOM:-${OUT:-gatehouse}.cdx.json}
if [ "$SBOM" != none ]; then
  CGO_ENABLED=0 go run github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0 \
    app -json -licenses -std -main cmd/gatehouse -output "$SBOM" . 2>/dev/null ||
    { echo "build.sh: cyclonedx-gomod could not write $SBOM (SBOM=none skips it)" >&2; exit 1; }
  echo "built ${OUT:-gatehouse} and its SBOM $SBOM (scripts/scan.sh --binary ${OUT:-gatehouse} scans it)"
fi
