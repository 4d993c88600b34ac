package app_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	// backupFixtureVersion names the cached data dir: change it whenever
	// what backupFixture writes changes, or the audit log's or the
	// store's files do, so that a stale copy is never used.
	backupFixtureVersion = "v1"
	// backupBenchBase is the config the fixture is built and served with
	// (a fixed origin: the default one names the host).
	backupBenchBase = "audit: {origin: gatehouse/bench}\n"
)

// BenchmarkBackup1M backs up a data dir holding a file audit log of
// 1,000,000 entries and a SQLite store of 100,000 API keys, through POST
// /v1/backups (what `gatehouse backup create` asks the server for; the
// schedule calls the same Service.Create), to a directory destination,
// while a real Gatehouse (the harness: real listeners, a real upstream)
// serves proxied requests with an API key from concurrent clients.
//
// Each iteration measures the request latency over an idle window (no
// backup running) and over the window of one backup, and the benchmark
// fails if any request failed in either: a backup must not stop the
// gateway from serving. Latency is counted from when a request was due
// (each client sends at a fixed rate), so a stall shows in every request
// it delayed, not only in the one it held. It reports
//
//	backup-s        seconds per backup (the POST, end to end)
//	in-MB, in-MB/s  the data backed up (the store's file and WAL, and the audit dir, as on disk)
//	out-MB, out-MB/s the encrypted backup file written
//	p99-idle-ms, p99-during-ms, p99-added-ms, max-during-ms  request latency
//
// (MB are 2^20 bytes.) The data dir is built once (15 s here) and cached
// in os.TempDir() under its version; each run serves a copy.
// Before measuring, it waits for the backup and restore test the schedule
// starts with (a deployment with no backup makes one at once) and makes the
// day's compliance snapshot, so that neither lands in a window. Run it with
//
//	go test -run '^$' -bench BenchmarkBackup1M -benchtime 5x -timeout 30m ./internal/app/
//
// (five backups: a backup lasts about a second, so one gives the p99 of
// only some 270 requests).
// GATEHOUSE_BENCH_CLIENTS (default 8) and GATEHOUSE_BENCH_RPS (default
// 200, over all clients) set the load.
func BenchmarkBackup1M(b *testing.B) { benchBackup(b, 1_000_000, 100_000) }

// BenchmarkBackup100k is BenchmarkBackup1M with 100,000 audit entries and
// 10,000 keys.
func BenchmarkBackup100k(b *testing.B) { benchBackup(b, 100_000, 10_000) }

func benchBackup(b *testing.B, entries, keys int) {
	clients, rps := benchEnvInt(b, "GATEHOUSE_BENCH_CLIENTS", 8), benchEnvInt(b, "GATEHOUSE_BENCH_RPS", 200)
	fixture := backupFixture(b, entries, keys)
	dataDir := filepath.Join(b.TempDir(), "data")
	copied := time.Now()
	if err := copyTree(fixture, dataDir); err != nil {
		b.Fatalf("copy the cached data dir: %v", err)
	}
	b.Logf("data dir copied from %s in %v", fixture, time.Since(copied).Round(time.Millisecond))

	h := mustStartIn(b, dataDir, backupBenchBase+backupConfig(b, filepath.Join(b.TempDir(), "backups"))+
		"ratelimit: {default: {requests: 100000000, per: 1m}}\n", "")
	key := h.createKey(map[string]any{"name": "backup-bench", "scopes": []string{"read:signals"}})
	load := &benchLoad{url: h.base + "/api/v1/signals/", key: key.Key, clients: clients, every: time.Duration(clients) * time.Second / time.Duration(rps),
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}}
	waited := time.Now()
	h.waitRestoreTest()
	b.Logf("the schedule's first backup and restore test took %v", time.Since(waited).Round(time.Millisecond))
	// The day's compliance snapshot reads the whole audit log (seconds of
	// CPU); serve's first try is a minute after start, in the middle of
	// the measurement. Made now, that try finds it made.
	waited = time.Now()
	if _, err := h.app.Snapshot(b.Context()); err != nil {
		b.Fatalf("compliance snapshot: %v", err)
	}
	b.Logf("the day's compliance snapshot took %v", time.Since(waited).Round(time.Millisecond))
	load.run(func() { time.Sleep(2 * time.Second) }) // warm: connections, caches

	var idle, during []time.Duration
	var took time.Duration
	var in, out int64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		wi := load.run(func() { time.Sleep(10 * time.Second) })
		if wi.failed > 0 {
			b.Fatalf("%d of %d requests failed with no backup running; first: %s", wi.failed, len(wi.lat)+wi.failed, wi.firstErr)
		}
		idle = append(idle, wi.lat...)
		in += dirSize(b, filepath.Join(dataDir, "audit")) + storeSize(b, dataDir) // audit.dir is the default
		b.StartTimer()
		var info struct {
			Size int64 `json:"size"`
		}
		began := time.Now()
		wd := load.run(func() {
			if code := h.adminCall("POST", "/v1/backups", nil, &info); code != http.StatusCreated {
				b.Errorf("POST /v1/backups: HTTP %d", code)
			}
		})
		t := time.Since(began)
		took += t
		if b.Failed() {
			b.FailNow()
		}
		if wd.failed > 0 {
			b.Fatalf("the backup stopped the gateway from serving: %d of %d requests failed while it ran; first: %s", wd.failed, len(wd.lat)+wd.failed, wd.firstErr)
		}
		during = append(during, wd.lat...)
		out += info.Size
		b.Logf("backup %d: %v; p99 idle %v, during %v (max %v) of %d requests", i+1, t.Round(time.Millisecond),
			quantile(wi.lat, 0.99).Round(10*time.Microsecond), quantile(wd.lat, 0.99).Round(10*time.Microsecond), quantile(wd.lat, 1).Round(10*time.Microsecond), len(wd.lat))
	}
	n := float64(b.N)
	const mb = 1 << 20
	b.ReportMetric(took.Seconds()/n, "backup-s")
	b.ReportMetric(float64(in)/mb/n, "in-MB")
	b.ReportMetric(float64(in)/mb/took.Seconds(), "in-MB/s")
	b.ReportMetric(float64(out)/mb/n, "out-MB")
	b.ReportMetric(float64(out)/mb/took.Seconds(), "out-MB/s")
	pi, pd := quantile(idle, 0.99), quantile(during, 0.99)
	b.ReportMetric(ms(pi), "p99-idle-ms")
	b.ReportMetric(ms(pd), "p99-during-ms")
	b.ReportMetric(ms(pd-pi), "p99-added-ms")
	b.ReportMetric(ms(quantile(during, 1)), "max-during-ms")
	b.Logf("%d requests idle (p50 %v), %d during the backup (p50 %v), from %d clients at %d/s",
		len(idle), quantile(idle, 0.5), len(during), quantile(during, 0.5), clients, rps)
}

// backupFixture returns the cached data dir of n audit entries and keys
// API keys, building it first if there is none.
func backupFixture(b *testing.B, entries, keys int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("gatehouse-bench-backup-%s-%d-%d", backupFixtureVersion, entries, keys))
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	built := time.Now()
	tmp, err := os.MkdirTemp(os.TempDir(), "gatehouse-bench-backup-build-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()
	cfg, err := config.Parse("bench.yaml", []byte("data_dir: "+tmp+"\n"+backupBenchBase))
	if err != nil {
		b.Fatal(err)
	}
	// Before the harness's clock, so that the log's times only go forward.
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	buildEvidenceLog(b, ctx, app.AuditDir(cfg, tmp), cfg.Audit.Origin, entries, end.AddDate(0, 0, -90), end)
	st, err := app.OpenStore(ctx, cfg, tmp)
	if err != nil {
		b.Fatal(err)
	}
	storetest.FillKeys(b, ctx, st, keys)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr != nil { // not another run that built it meanwhile
			b.Fatal(err)
		}
	}
	b.Logf("data dir of %d audit entries and %d keys built in %v, cached in %s", entries, keys, time.Since(built).Round(time.Second), dir)
	return dir
}

// copyTree copies the directory src to dst (which must not exist),
// keeping the files' and directories' permissions, and fsyncs the files.
func copyTree(src, dst string) error {
	from, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer from.Close()
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	to, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer to.Close()
	return fs.WalkDir(from.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return to.Mkdir(path, fi.Mode().Perm())
		}
		r, err := from.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		w, err := to.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			w.Close()
			return err
		}
		// Written out now, not by the kernel half a minute later, in the
		// middle of a measurement.
		if err := w.Sync(); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
}

// storeSize is the size of the SQLite store in dataDir: its file and WAL.
func storeSize(b *testing.B, dataDir string) int64 {
	b.Helper()
	var n int64
	for _, f := range []string{"gatehouse.db", "gatehouse.db-wal"} {
		fi, err := os.Stat(filepath.Join(dataDir, f))
		if err == nil {
			n += fi.Size()
		} else if !os.IsNotExist(err) {
			b.Fatal(err)
		}
	}
	return n
}

// waitRestoreTest waits for the restore test the backup schedule runs
// after its first backup to pass.
func (h *harness) waitRestoreTest() {
	h.t.Helper()
	const wait = 10 * time.Minute
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Second) {
		var sum struct {
			Backups struct {
				LastRestoreTest time.Time `json:"last_restore_test"`
			} `json:"backups"`
		}
		if code := h.adminCall("GET", "/v1/metrics/summary", nil, &sum); code != http.StatusOK {
			h.t.Fatalf("GET /v1/metrics/summary: HTTP %d", code)
		}
		if !sum.Backups.LastRestoreTest.IsZero() {
			return
		}
	}
	var lines []string
	for l := range strings.Lines(h.logs.String()) {
		if strings.Contains(l, "backup") {
			lines = append(lines, l)
		}
	}
	h.t.Fatalf("no passing restore test after %v; the log says:\n%s", wait, strings.Join(lines, ""))
}

// benchLoad is clients that each send GET url with key every every.
type benchLoad struct {
	url, key string
	clients  int
	every    time.Duration
	client   *http.Client
}

// window is what the clients saw while one run's work ran.
type window struct {
	lat      []time.Duration // of the requests answered 200
	failed   int
	firstErr string
}

// run runs the clients until work returns. A request's latency runs from
// when it was due, so a client held up by a slow answer counts the wait
// in every request it had to send late.
func (l *benchLoad) run(work func()) window {
	stop := make(chan struct{})
	var (
		mu  sync.Mutex
		all window
		wg  sync.WaitGroup
	)
	for c := range l.clients {
		wg.Go(func() {
			var w window
			// Clients start spread over one period, not all at once.
			due := time.Now().Add(l.every * time.Duration(c) / time.Duration(l.clients))
			for i := 0; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					all.lat = append(all.lat, w.lat...)
					all.failed += w.failed
					if all.firstErr == "" {
						all.firstErr = w.firstErr
					}
					mu.Unlock()
					return
				case <-time.After(time.Until(due)):
				}
				if err := l.get(strconv.Itoa(c*1_000_000 + i)); err != nil {
					w.failed++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
				} else {
					w.lat = append(w.lat, time.Since(due))
				}
				due = due.Add(l.every)
			}
		})
	}
	work()
	close(stop)
	wg.Wait()
	return all
}

func (l *benchLoad) get(path string) error {
	req, err := http.NewRequest(http.MethodGet, l.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	res, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return fmt.Errorf("GET %s: read the answer: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, res.StatusCode)
	}
	return nil
}

// quantile is the q-quantile of d (q=1: the largest), 0 for none.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchEnvInt reads a positive number from the environment variable name,
// or returns def when it is unset.
func benchEnvInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
