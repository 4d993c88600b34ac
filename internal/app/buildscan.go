package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

// EventBuildScan records, at start, the dependency scan of the binary
// serving: the evidence of CC7.1's dependencies.scan check.
const EventBuildScan = "build.scan"

// recordBuildScan reads exe.scan.json, the summary scripts/scan.sh
// --binary writes beside a build, and records it with whether it is of
// this very binary (its SHA-256). No summary: nothing is recorded and the
// check stays manual.
func (a *App) recordBuildScan(ctx context.Context, exe string) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			a.log.WarnContext(ctx, "dependency scan not read: cannot find the binary", "err", err)
			return
		}
	}
	path := exe + ".scan.json"
	scan, err := compliance.ReadDependencyScan(path)
	if errors.Is(err, fs.ErrNotExist) {
		a.log.DebugContext(ctx, "no dependency scan beside the binary", "path", path)
		return
	}
	if err != nil {
		a.log.WarnContext(ctx, "dependency scan not read", "path", path, "err", err)
		return
	}
	sum, err := compliance.FileSHA256(exe)
	if err != nil {
		a.log.WarnContext(ctx, "dependency scan not read", "err", err)
		return
	}
	var reachable, blocking []string
	for _, v := range scan.Reachable() {
		reachable = append(reachable, v.ID+" "+v.Module+"@"+v.Version+" fixed in "+v.Fixed)
	}
	for _, v := range scan.Blocking() {
		blocking = append(blocking, v.ID)
	}
	matches := scan.BinarySHA256 != "" && scan.BinarySHA256 == sum
	if !matches {
		a.log.WarnContext(ctx, "the dependency scan beside the binary is of another build", "path", path)
	}
	a.system(ctx, EventBuildScan, map[string]any{
		"scanned_at": scan.ScannedAt.UTC().Format(time.RFC3339), "scanner": scan.Scanner, "go_version": scan.GoVersion,
		"database": scan.Database, "database_modified": scan.DatabaseModified.UTC().Format(time.RFC3339),
		"sbom_sha256": scan.SBOMSHA256, "binary_sha256": sum, "scan_binary_sha256": scan.BinarySHA256,
		"binary_matches": matches, "vulns": len(scan.Vulns), "reachable": reachable, "reachable_count": len(reachable),
		"blocking": blocking, "blocking_count": len(blocking),
	})
}
