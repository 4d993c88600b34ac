package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestBuildScanEvidence: the summary scripts/scan.sh --binary writes
// beside a binary is recorded at start (build.scan) and decides CC7.1's
// dependencies.scan check — pass only for the very binary scanned.
func TestBuildScanEvidence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rebuilt bool // the binary changed after its scan
		want    compliance.Status
	}{
		{"scanned binary", false, compliance.StatusPass},
		{"binary replaced after the scan", true, compliance.StatusFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "gatehouse")
			os.WriteFile(exe, []byte("a build"), 0o755)
			sum := sha256.Sum256([]byte("a build"))
			scan := compliance.DependencyScan{ScannedAt: time.Now().Add(-time.Hour).UTC(), Scanner: "govulncheck v1.9.0", GoVersion: "go1.27.3",
				Database: "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018", SBOMSHA256: "5b0m", BinarySHA256: hex.EncodeToString(sum[:]),
				Vulns: []compliance.Vuln{{ID: "GO-2026-7002", Module: "example.com/unused", Version: "v0.1.0"}}}
			b, _ := json.Marshal(scan)
			os.WriteFile(exe+".scan.json", b, 0o644)
			if tc.rebuilt {
				os.WriteFile(exe, []byte("another build"), 0o755)
			}
			cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n", t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == "GATEHOUSE_ADMIN_TOKEN" {
					return adminToken
				}
				return ""
			}
			a, err := app.New(context.Background(), cfg, app.Options{Getenv: getenv, Logger: slog.New(slog.DiscardHandler), Executable: exe})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Shutdown(context.Background()) })
			req, _ := http.NewRequest("GET", "http://"+a.AdminAddr()+"/v1/evidence", nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET /v1/evidence: %d %s", resp.StatusCode, data)
			}
			var r compliance.Report
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			f := findingOf(t, &r, "CC7.1", "dependencies.scan")
			if f.Status != tc.want {
				t.Fatalf("dependencies.scan: %s (%s), want %s", f.Status, f.Reason, tc.want)
			}
			if len(f.Evidence) == 0 {
				t.Errorf("the finding cites no audit entry: %+v", f)
			}
			if res, err := compliance.Verify(data, r.AuditPublicKey); err != nil || !res.OK() {
				t.Fatalf("verify: %v %v", err, res)
			}
		})
	}
}
