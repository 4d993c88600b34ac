package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/config"
)

// BenchmarkEvidence1M builds a file audit log of 1,000,000 entries over 90
// days (per-request http.request and authz.decision events, with one admin,
// config or backup event in 250) and generates the offline evidence report
// over it the way gatehouse evidence --data-dir does (app.OfflineReport),
// then encodes it as JSON. It reports the seconds per report, the peak
// resident memory of the report (VmHWM of /proc/self/status, reset through
// /proc/self/clear_refs after the log is built, "peak-rss-MB"), the bytes
// allocated per report and the time taken to build the log. Run it with
//
//	go test -run '^$' -bench BenchmarkEvidence1M -benchtime 1x -timeout 30m ./internal/app/
//
// The bound is under 30 s and under 500 MB.
func BenchmarkEvidence1M(b *testing.B) { benchEvidence(b, 1_000_000) }

// BenchmarkEvidence100k is BenchmarkEvidence1M over 100,000 entries.
func BenchmarkEvidence100k(b *testing.B) { benchEvidence(b, 100_000) }

func benchEvidence(b *testing.B, n int) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg, err := config.Parse("bench.yaml", []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: "+dir+"\n"))
	if err != nil {
		b.Fatal(err)
	}
	end := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -90)
	built := time.Now()
	buildEvidenceLog(b, ctx, app.AuditDir(cfg, dir), cfg.Audit.Origin, n, start, end)
	buildTime := time.Since(built)
	logBytes := dirSize(b, app.AuditDir(cfg, dir))
	opts := app.Options{Getenv: func(string) string { return "" }, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	period := compliance.Period{From: start, To: end}
	by := gatehouse.Actor{Kind: "system", ID: "evidence-bench"}
	runtime.GC()
	resetPeakRSS(b)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	var last []byte
	for range b.N {
		r, err := app.OfflineReport(ctx, cfg, opts, by, period)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(r); err != nil {
			b.Fatal(err)
		}
		last = buf.Bytes()
	}
	b.StopTimer()
	// The report is the real one: it verifies, over the whole log.
	var r compliance.Report
	if err := json.Unmarshal(last, &r); err != nil {
		b.Fatal(err)
	}
	if res, err := compliance.Verify(last, r.AuditPublicKey); err != nil || !res.OK() {
		b.Fatalf("the report does not verify: %v %v", err, res.Problems)
	} else if res.TreeSize < uint64(n) {
		// Opening the deployment records a few events of its own.
		b.Fatalf("the report's checkpoint covers %d entries, want at least %d", res.TreeSize, n)
	}
	runtime.ReadMemStats(&m1)
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/report")
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MB/report")
	b.ReportMetric(float64(len(last))/(1<<10), "report-KiB")
	b.ReportMetric(buildTime.Seconds(), "log-build-s")
	b.ReportMetric(float64(logBytes)/(1<<20), "log-MB")
}

// buildEvidenceLog appends n events spread evenly over [start, end) from
// 32 writers with batch durability and no preallocation (the log's
// integrity does not depend on either; only the crash window does).
func buildEvidenceLog(b *testing.B, ctx context.Context, dir, origin string, n int, start, end time.Time) {
	b.Helper()
	l, err := audit.Open(ctx, audit.Config{Dir: dir, Origin: origin, Durability: audit.DurabilityBatch, NoPreallocate: true})
	if err != nil {
		b.Fatal(err)
	}
	step := end.Sub(start) / time.Duration(n)
	const writers = 32
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				if err := l.Record(ctx, evidenceBenchEvent(i, start.Add(time.Duration(i)*step))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := l.Size(); got != uint64(n) {
		b.Fatalf("log holds %d entries, want %d", got, n)
	}
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// evidenceBenchEvent is the i-th event of the benchmark log: mostly a
// proxied request and its authorization decision (one in twenty denied),
// and every 250th an admin, config, settings or backup event.
func evidenceBenchEvent(i int, t time.Time) gatehouse.Event {
	key := gatehouse.Actor{Kind: "api_key", ID: "key_01HZX3J5P6Q7R8S9T0V1W2X" + strconv.Itoa(i%97)}
	req := &gatehouse.RequestInfo{Method: "GET", Path: "/api/v1/signals/" + strconv.Itoa(i%5000), Status: 200, DurationMS: 3.25,
		SourceIP: "203.0.113." + strconv.Itoa(i%250), RequestID: fmt.Sprintf("req-%08d", i)}
	if i%250 == 0 {
		admin := gatehouse.Actor{Kind: "admin_token", ID: "bootstrap"}
		types := []string{"admin.key.create", "admin.key.revoke", "admin.settings.change", "config.loaded", "backup.create", "backup.verify", "admin.policy.reload"}
		typ := types[(i/250)%len(types)]
		return gatehouse.Event{Time: t, Type: typ, Actor: admin, Action: typ, Resource: "key:" + key.ID, Outcome: gatehouse.OutcomeSuccess,
			Request: &gatehouse.RequestInfo{Method: "POST", Path: "/v1/keys", Status: 201, SourceIP: "10.0.0.5", RequestID: req.RequestID},
			Details: map[string]any{"sha256": "3f2a9c0d", "name": "svc-" + strconv.Itoa(i%97)}}
	}
	if i%2 == 0 {
		return gatehouse.Event{Time: t, Type: "http.request", Actor: key, Action: "proxy", Resource: "route:signals-read",
			Outcome: gatehouse.OutcomeSuccess, Request: req, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	}
	out := gatehouse.OutcomeSuccess
	if i%20 == 1 {
		out = gatehouse.OutcomeDenied
	}
	return gatehouse.Event{Time: t, Type: "authz.decision", Actor: key, Action: "signals.read", Resource: "signals:" + strconv.Itoa(i%5000),
		Outcome: out, Request: req, Details: map[string]any{"policy_revision": "r42", "reason": "role reader"}}
}

// dirSize is the size of the files in dir.
func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// resetPeakRSS resets the VmHWM of this process to its current RSS.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS reads VmHWM (bytes) from /proc/self/status.
func peakRSS(b *testing.B) int64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
