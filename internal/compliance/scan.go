package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// DependencyScan is the summary scripts/scan.sh writes of one dependency
// scan of a build (govulncheck over an offline copy of the Go
// vulnerability database, with the build's CycloneDX SBOM). The
// dependencies.scan check (CC7.1) reads it from beside the binary.
type DependencyScan struct {
	ScannedAt time.Time `json:"scanned_at"`
	Scanner   string    `json:"scanner"`    // "govulncheck v1.9.0"
	GoVersion string    `json:"go_version"` // the toolchain the build uses
	// Database is the module the vulnerability database was built from
	// ("golang.org/x/vulndb@v0.0.0-…") and DatabaseModified the newest
	// entry in it.
	Database         string    `json:"database"`
	DatabaseModified time.Time `json:"database_modified"`
	// SBOMSHA256 and BinarySHA256 tie the scan to one build ("" when the
	// scan ran without them).
	SBOMSHA256   string `json:"sbom_sha256,omitempty"`
	BinarySHA256 string `json:"binary_sha256,omitempty"`
	Vulns        []Vuln `json:"vulns"`
}

// Vuln is one vulnerability govulncheck found in the build's dependencies.
type Vuln struct {
	ID      string `json:"id"`      // GO-2026-1234
	Module  string `json:"module"`  // "stdlib" for the standard library
	Version string `json:"version"` // the version in the build
	Fixed   string `json:"fixed,omitempty"`
	// Reachable says the build's code calls an affected function; a
	// finding only in a required module's code it does not call is not.
	Reachable bool   `json:"reachable"`
	Summary   string `json:"summary,omitempty"`
}

// Blocking returns the vulnerabilities that must stop a release:
// reachable ones in a module (standard-library ones are fixed by moving
// the toolchain, and reported with the version that fixes them).
func (d *DependencyScan) Blocking() []Vuln {
	var out []Vuln
	for _, v := range d.Vulns {
		if v.Reachable && v.Module != "stdlib" && v.Module != "toolchain" {
			out = append(out, v)
		}
	}
	return out
}

// Reachable returns the vulnerabilities the build's code reaches.
func (d *DependencyScan) Reachable() []Vuln {
	var out []Vuln
	for _, v := range d.Vulns {
		if v.Reachable {
			out = append(out, v)
		}
	}
	return out
}

// ReadDependencyScan reads a summary written by scripts/scan.sh.
func ReadDependencyScan(path string) (*DependencyScan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dependency scan: %w", err)
	}
	var d DependencyScan
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("read dependency scan %s: %w", path, err)
	}
	if d.ScannedAt.IsZero() || d.Scanner == "" {
		return nil, fmt.Errorf("read dependency scan %s: no scanned_at or scanner: not a scan summary", path)
	}
	return &d, nil
}

// FileSHA256 returns the hex SHA-256 of a file: how a scan summary names
// the binary and the SBOM it is of (scripts/supplychain writes it, serve
// compares its own).
func FileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
