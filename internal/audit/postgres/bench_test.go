package postgres_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

const (
	benchReplicas = 3
	// benchClients is how many goroutines record on each replica, by
	// default.
	benchClients = 64
)

// BenchmarkAppendThreeReplicas records b.N events through three replicas
// of one log (three Log instances on one database, benchClients
// goroutines each, every Record returning once its batch is committed);
// see benchAppend for what it reports.
func BenchmarkAppendThreeReplicas(b *testing.B) { benchAppend(b, benchReplicas) }

// BenchmarkAppendOneReplica is BenchmarkAppendThreeReplicas with one
// replica (and so a third of the clients): what one replica reaches alone,
// against which the three replicas' figure shows how the log scales.
func BenchmarkAppendOneReplica(b *testing.B) { benchAppend(b, 1) }

// benchAppend records b.N events through replicas replicas of one log
// (benchClients goroutines each, or GATEHOUSE_BENCH_CLIENTS) and reports
// the events recorded per second, the p50 and p99 Record latency, and
// whether the leader keeps up: the most events seen queued while
// recording (max-pending, sampled every 50 ms) and how long after the
// last Record the leader had sequenced everything (leader-lag-ms). It
// reports the events per batch (group commit), per WAL fsync of the whole
// server and the WAL bytes per event (pg_stat_wal). When PostgreSQL runs
// on this host it also reports the CPU time its processes spent per
// event, from the first Record until everything is sequenced
// (pg-cpu-µs/op), and the CPU time of this process (the replicas and
// their clients: go-cpu-µs/op). GATEHOUSE_BENCH_WRITERS sets
// Config.Writers (default postgres.DefaultWriters). The log is verified
// afterwards.
func benchAppend(b *testing.B, replicas int) {
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(b)
	keys := b.TempDir()
	writers := benchEnv(b, "GATEHOUSE_BENCH_WRITERS", 0)
	clients := benchEnv(b, "GATEHOUSE_BENCH_CLIENTS", benchClients)
	logs := make([]*postgres.Log, replicas)
	for i := range logs {
		logs[i] = MustOpen(b, dsn, keys, func(c *postgres.Config) {
			c.Writers = writers
			c.CheckpointInterval = 0 // the defaults: a checkpoint every 10 s,
			c.LeaderPoll = 0         // a campaign every 0.5 s
		})
	}
	leader := waitLeader(b, logs...)
	db := mustConnect(b, dsn)

	var next atomic.Int64
	lats := make([][]time.Duration, replicas*clients)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	// Sample the queue while recording: it stays short if the leader
	// keeps up.
	sampler := mustConnect(b, dsn)
	stopSampling := make(chan struct{})
	sampled := make(chan int64)
	go func() {
		var most int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				sampled <- most
				return
			case <-tick.C:
			}
			var n int64
			if err := sampler.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM audit_queue`).Scan(&n); err == nil {
				most = max(most, n)
			}
		}
	}()
	cpu, haveCPU := pgCPU(b, db)
	var cpu0 time.Duration
	if haveCPU {
		cpu0 = cpu()
	}
	wal0 := walStats(b, db)
	self0 := selfCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := range lats {
		l := logs[c%replicas]
		who := fmt.Sprint("client-", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, b.N/len(lats)+1)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				t0 := time.Now()
				if err := l.Record(ctx, event(int(i), who)); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[c] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(stopSampling)
	maxPending := <-sampled
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}

	// How far behind the leader was when the last Record returned.
	for {
		var pending int64
		if err := db.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM audit_queue`).Scan(&pending); err != nil {
			b.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Since(start) > elapsed+time.Minute {
			b.Fatalf("the leader did not sequence the queue in a minute: %d events pending", pending)
		}
		time.Sleep(time.Millisecond)
	}
	lag := time.Since(start) - elapsed
	b.ReportMetric(float64(selfCPU(b)-self0)/float64(time.Microsecond)/float64(b.N), "go-cpu-µs/op")
	wal := walStats(b, db)
	syncs, walBytes := wal.syncs-wal0.syncs, wal.bytes-wal0.bytes
	var batches int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_batches`).Scan(&batches); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/float64(batches), "events/batch")
	if syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "events/fsync")
	}
	b.ReportMetric(float64(walBytes)/float64(b.N), "wal-B/op")
	if haveCPU {
		b.ReportMetric(float64(cpu()-cpu0)/float64(time.Microsecond)/float64(b.N), "pg-cpu-µs/op")
	}

	all := slices.Concat(lats...)
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(ms(lag), "leader-lag-ms")
	b.ReportMetric(float64(maxPending), "max-pending")

	signed, err := leader.Sync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range logs {
		if err := l.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: signed})
	if err != nil {
		b.Fatal(err)
	}
	if res.TreeSize != uint64(b.N) || res.Pending != 0 {
		b.Fatalf("verify after %d events: %v", b.N, res)
	}
}

// walCounts is what pg_stat_wal has counted since its last reset.
type walCounts struct{ syncs, bytes int64 }

// walStats returns how many times the server has synced its WAL and how
// many bytes it wrote to it.
func walStats(tb testing.TB, db *pgx.Conn) walCounts {
	tb.Helper()
	var w walCounts
	if err := db.QueryRow(context.Background(), `SELECT wal_sync, wal_bytes::bigint FROM pg_stat_wal`).Scan(&w.syncs, &w.bytes); err != nil {
		tb.Fatal(err)
	}
	return w
}

// benchEnv returns the integer in the environment variable name, or def
// when it is not set.
func benchEnv(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s: want a positive integer, not %q", name, s)
	}
	return n
}

// selfCPU returns the CPU time this process has used.
func selfCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
