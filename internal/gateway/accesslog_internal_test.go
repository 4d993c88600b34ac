package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/logbuf"
)

// TestAccessLogAllocs: the access line of a request, written as the
// process writes it (into the asynchronous logbuf.Writer), allocates
// nothing when the gateway writes the JSON itself (Config.AccessLogWriter,
// serve's default), and twice through slog's JSON handler: the record's
// attributes beyond the five slog keeps inline (the line has nine), and
// slog's boxing of the float duration_ms for json.Marshal (which it calls
// for every float, to print floats as encoding/json does). The Writer
// appends into a reused buffer, and redaction and the write happen on the
// Writer's goroutine.
func TestAccessLogAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	w := logbuf.New(io.Discard, 0)
	defer w.Close()
	for _, tt := range []struct {
		name   string
		direct io.Writer
		budget float64
	}{
		{"written directly", w, 0},
		{"through slog", nil, 3}, // 2 under go1.26.8; go1.27.3's slog takes one more
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Authenticator: nopAuthn{}, Authorizer: nopAuthz{}, Logger: slog.New(slog.NewJSONHandler(w, nil)), AccessLogWriter: tt.direct})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/api/x", nil)
			ex := &exchange{start: time.Now(), requestID: "01M8T7B5CXT7WXNN8SA2CDBWWV", trace: newTraceParent(""),
				route:     &route{Route: gatehouse.Route{Name: "api"}},
				principal: gatehouse.NewPrincipal("key_5jym7b6q2a2p6yyw", gatehouse.KindAPIKey, "k", []string{"read"}, "")}
			rec := &recorder{status: 200, bytes: 2}
			ctx := context.Background()
			if allocs := testing.AllocsPerRun(1000, func() { g.logAccess(ctx, r, ex, rec) }); allocs > tt.budget {
				t.Fatalf("%.1f allocations per access line, budget %v", allocs, tt.budget)
			}
		})
	}
}

// slogLine is what slog's JSON handler writes for e under the gateway's
// group: the reference appendAccessLine must match byte for byte.
func slogLine(t time.Time, level slog.Level, e *accessEntry) []byte {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, nil).WithGroup("gateway")
	r := slog.NewRecord(t, level, "request", 0)
	r.AddAttrs(e.appendAttrs(nil)...)
	h.Handle(context.Background(), r)
	return buf.Bytes()
}

func TestAccessLineIsSlogJSON(t *testing.T) {
	base := accessEntry{requestID: "01M8TKMEH7NQGDRYCCKVQ435H4", method: "GET", path: "/api/x", status: 200, bytes: 53,
		durationMS: 0.123, traceID: "0123456789abcdef0123456789abcdef", route: "bench", principal: "key_01M8TKMEH7NQGDRYCCKVQ435H4"}
	with := func(f func(e *accessEntry)) accessEntry { e := base; f(&e); return e }
	utc := time.Date(2026, 12, 2, 5, 28, 58, 151071607, time.UTC)
	zoned := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -(5*3600+30*60)))
	tests := []struct {
		name  string
		t     time.Time
		level slog.Level
		e     accessEntry
	}{
		{"proxied", utc, slog.LevelInfo, base},
		{"5xx at warn", utc, slog.LevelWarn, with(func(e *accessEntry) { e.status = 502 })},
		{"zoned time, whole second", zoned, slog.LevelInfo, base},
		{"anonymous, no route", utc, slog.LevelInfo, with(func(e *accessEntry) { e.route, e.principal, e.status = "", "", 404 })},
		{"zero duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = 0 })},
		{"long duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = 123456789.001 })},
		{"tiny duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = 1e-7 })},
		{"huge duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = 1e22 })},
		{"negative duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = -0.5 })},
		{"NaN duration", utc, slog.LevelInfo, with(func(e *accessEntry) { e.durationMS = math.NaN() })},
		{"quotes and backslashes", utc, slog.LevelInfo, with(func(e *accessEntry) { e.path = `/a"b\c` })},
		{"control characters", utc, slog.LevelInfo, with(func(e *accessEntry) { e.path = "/a\nb\rc\td\x00e\x1f\x7f" })},
		{"HTML characters", utc, slog.LevelInfo, with(func(e *accessEntry) { e.path = "/<script>&amp;" })},
		{"non-ASCII", utc, slog.LevelInfo, with(func(e *accessEntry) { e.path = "/café/日本/🙂" })},
		{"invalid UTF-8", utc, slog.LevelInfo, with(func(e *accessEntry) { e.path = "/a\xffb\xc3" })},
		{"line separators", utc, slog.LevelInfo, with(func(e *accessEntry) { e.route = "a\u2028b\u2029c" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := slogLine(tt.t, tt.level, &tt.e)
			if got := appendAccessLine(nil, tt.t, tt.level, &tt.e); !bytes.Equal(got, want) {
				t.Errorf("line differs from slog's\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzAccessLine: whatever the strings and numbers, the line is slog's.
func FuzzAccessLine(f *testing.F) {
	f.Add("/api/x", "bench", 200, 0.5)
	f.Add("/a\"\\\n\xff\u2028", "", 503, 1e-9)
	f.Fuzz(func(t *testing.T, path, route string, status int, ms float64) {
		e := accessEntry{requestID: "r", method: "GET", path: path, status: status, bytes: int64(status) * 3, durationMS: ms, traceID: "t", route: route, principal: path}
		now := time.Unix(1_800_000_000, int64(status)).UTC()
		want := slogLine(now, slog.LevelInfo, &e)
		if got := appendAccessLine(nil, now, slog.LevelInfo, &e); !bytes.Equal(got, want) {
			t.Errorf("line differs from slog's\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkAccessLine measures formatting a request's access line, by the
// gateway itself and through slog's JSON handler, into io.Discard.
func BenchmarkAccessLine(b *testing.B) {
	for _, c := range []struct {
		name   string
		direct io.Writer
	}{{"direct", io.Discard}, {"slog", nil}} {
		b.Run(c.name, func(b *testing.B) {
			g, err := New(Config{Authenticator: nopAuthn{}, Authorizer: nopAuthz{}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessLogWriter: c.direct})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/api/x", nil)
			ex := &exchange{start: time.Now(), requestID: "01M8T7B5CXT7WXNN8SA2CDBWWV", trace: newTraceParent(""),
				route:     &route{Route: gatehouse.Route{Name: "api"}},
				principal: gatehouse.NewPrincipal("key_5jym7b6q2a2p6yyw", gatehouse.KindAPIKey, "k", []string{"read"}, "")}
			rec := &recorder{status: 200, bytes: 2}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				g.logAccess(ctx, r, ex, rec)
			}
		})
	}
}
