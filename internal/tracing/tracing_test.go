package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/tracing/tracingtest"
)

func remoteParent(t *testing.T, traceID string, sampled bool) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

func sampled(s sdktrace.Sampler, ctx context.Context, traceID trace.TraceID) bool {
	return s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: traceID, Name: "GET"}).Decision == sdktrace.RecordAndSample
}

func TestSampler(t *testing.T) {
	// A trace id the stock TraceIDRatioBased sampler records at any ratio
	// above 0: its low 63 bits are 0. A caller may pick it.
	const lowID = "4bf92f3577b34da60000000000000000"
	tests := []struct {
		name        string
		ratio       float64
		trust       bool
		trustedHop  bool
		parentFlag  bool
		wantMin     int // recorded out of 1000
		wantMax     int
		withoutPeer bool // no parent at all
	}{
		{name: "new trace, ratio 1", ratio: 1, withoutPeer: true, wantMin: 1000, wantMax: 1000},
		{name: "new trace, ratio 0", ratio: 0, withoutPeer: true, wantMin: 0, wantMax: 0},
		{name: "caller's sampled flag ignored", ratio: 0, parentFlag: true, wantMin: 0, wantMax: 0},
		{name: "caller's unsampled flag ignored", ratio: 1, wantMin: 1000, wantMax: 1000},
		{name: "chosen trace id is not always recorded", ratio: 0.25, parentFlag: true, wantMin: 150, wantMax: 350},
		{name: "trust without a trusted hop", ratio: 0, trust: true, parentFlag: true, wantMin: 0, wantMax: 0},
		{name: "trusted hop without trust", ratio: 0, trustedHop: true, parentFlag: true, wantMin: 0, wantMax: 0},
		{name: "trusted hop's sampled flag", ratio: 0, trust: true, trustedHop: true, parentFlag: true, wantMin: 1000, wantMax: 1000},
		{name: "trusted hop's unsampled flag", ratio: 1, trust: true, trustedHop: true, wantMin: 0, wantMax: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tracing.NewSampler(tt.ratio, tt.trust)
			ctx := context.Background()
			if !tt.withoutPeer {
				ctx = trace.ContextWithRemoteSpanContext(ctx, remoteParent(t, lowID, tt.parentFlag))
			}
			if tt.trustedHop {
				ctx = tracing.ContextWithTrustedHop(ctx)
			}
			tid, _ := trace.TraceIDFromHex(lowID)
			n := 0
			for i := 0; i < 1000; i++ {
				if sampled(s, ctx, tid) {
					n++
				}
			}
			if n < tt.wantMin || n > tt.wantMax {
				t.Errorf("recorded %d of 1000, want %d to %d", n, tt.wantMin, tt.wantMax)
			}
		})
	}
	// A local parent is followed whatever the ratio: the steps of a
	// recorded request are all recorded, those of a dropped one none.
	for _, flag := range []bool{true, false} {
		sc := remoteParent(t, lowID, flag)
		local := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: sc.SpanID(), TraceFlags: sc.TraceFlags()})
		ctx := trace.ContextWithSpanContext(context.Background(), local)
		if got := sampled(tracing.NewSampler(0.5, false), ctx, sc.TraceID()); got != flag {
			t.Errorf("local parent sampled=%v: child sampled=%v", flag, got)
		}
	}
}

func TestExtract(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	long := make([]string, 0, 32)
	for i := 0; i < 32; i++ {
		v := strings.Repeat("x", 20)
		if i%3 == 1 {
			v = strings.Repeat("y", 200) // over 128: dropped first
		}
		long = append(long, "k"+string(rune('a'+i%26))+string(rune('a'+i/26))+"="+v)
	}
	tests := []struct {
		name, traceparent, tracestate string
		valid                         bool
		wantState                     func(string) bool
	}{
		{"valid", tp, "a=1,b=2", true, func(s string) bool { return s == "a=1,b=2" }},
		{"no tracestate", tp, "", true, func(s string) bool { return s == "" }},
		{"malformed tracestate ignored", tp, "a=1,,=bad", true, func(s string) bool { return s == "" }},
		{"missing", "", "a=1", false, nil},
		{"short", tp[:54], "a=1", false, nil},
		{"bad hex", strings.Replace(tp, "4bf9", "4bfz", 1), "a=1", false, nil},
		{"zero span", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "", false, nil},
		{"long tracestate cut", tp, strings.Join(long, ","), true, func(s string) bool {
			return len(s) <= tracing.MaxTraceState && strings.HasPrefix(s, "kaa=xxxx") && !strings.Contains(s, "yyy") && strings.Count(s, "=") >= 15
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.traceparent != "" {
				h.Set("Traceparent", tt.traceparent)
			}
			if tt.tracestate != "" {
				h.Set("Tracestate", tt.tracestate)
			}
			sc := tracing.Extract(h)
			if sc.IsValid() != tt.valid {
				t.Fatalf("valid = %v, want %v", sc.IsValid(), tt.valid)
			}
			if !tt.valid {
				if sc.TraceState().Len() != 0 {
					t.Errorf("tracestate %q kept without a valid traceparent", sc.TraceState())
				}
				return
			}
			if !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("span context %+v", sc)
			}
			if s := sc.TraceState().String(); !tt.wantState(s) {
				t.Errorf("tracestate %q (%d bytes)", s, len(s))
			}
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProviderExports: spans reach a collector with the configured
// headers; a collector refusing exports is logged once (never with the
// header values), and its recovery once.
func TestProviderExports(t *testing.T) {
	recv := tracingtest.MustStart(t)
	logs := &lockedBuffer{}
	p, err := tracing.New(context.Background(), tracing.Config{
		URL: recv.URL(), Headers: map[string]string{"Authorization": "Bearer collector-secret"}, SampleRatio: 1,
		ServiceName: "gatehouse", ServiceVersion: "test", Gzip: true, BatchTimeout: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	tr := p.Tracer()
	_, sp := tr.Start(context.Background(), "one")
	sp.End()
	spans := recv.WaitTrace(t, sp.SpanContext().TraceID().String(), 1, 5*time.Second)
	if spans[0].Name != "one" || spans[0].Resource["service.version"] != "test" {
		t.Errorf("span %+v", spans[0])
	}
	if h := recv.Headers(); h[0].Get("Authorization") != "Bearer collector-secret" || h[0].Get("Content-Encoding") != "gzip" {
		t.Errorf("export headers %v", h[0])
	}

	recv.SetStatus(http.StatusBadRequest) // not retried
	for i := 0; i < 3; i++ {
		_, sp := tr.Start(context.Background(), "lost")
		sp.End()
		time.Sleep(60 * time.Millisecond)
	}
	waitFor(t, func() bool { return p.Failures() >= 2 })
	if n := strings.Count(logs.String(), "trace export failing"); n != 1 {
		t.Errorf("%d 'trace export failing' lines, want 1:\n%s", n, logs)
	}
	recv.SetStatus(0)
	_, sp = tr.Start(context.Background(), "back")
	sp.End()
	recv.WaitTrace(t, sp.SpanContext().TraceID().String(), 1, 5*time.Second)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "trace export works again") })
	if strings.Contains(logs.String(), "collector-secret") {
		t.Errorf("an export header's value was logged:\n%s", logs)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
