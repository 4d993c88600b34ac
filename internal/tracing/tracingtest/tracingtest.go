// Package tracingtest is an in-process OTLP/HTTP trace receiver for
// tests: it decodes what an exporter posts (protobuf, gzip or not) and
// keeps the spans and the headers they came with.
package tracingtest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, its ids in hex.
type Span struct {
	Name                 string
	TraceID, SpanID      string
	ParentSpanID         string
	TraceState           string
	Kind                 tracepb.Span_SpanKind
	Attributes           map[string]string // values as text
	StatusError          bool
	Resource             map[string]string
	Start, End           time.Time
	InstrumentationScope string
}

// Receiver is a running collector endpoint. It is safe for concurrent use.
type Receiver struct {
	*httptest.Server
	mu      sync.Mutex
	spans   []Span
	headers []http.Header
	// Status, when set, is answered instead of 200 (an unavailable
	// collector).
	status int
}

// MustStart starts a Receiver, closed when tb ends.
func MustStart(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.Close)
	return r
}

// URL is the export URL (…/v1/traces).
func (r *Receiver) URL() string { return r.Server.URL + "/v1/traces" }

// SetStatus makes the receiver answer status to every export (0: 200).
func (r *Receiver) SetStatus(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	r.headers = append(r.headers, req.Header.Clone())
	for _, rs := range msg.ResourceSpans {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, Span{
					Name:                 s.Name,
					TraceID:              hex.EncodeToString(s.TraceId),
					SpanID:               hex.EncodeToString(s.SpanId),
					ParentSpanID:         hex.EncodeToString(s.ParentSpanId),
					TraceState:           s.TraceState,
					Kind:                 s.Kind,
					Attributes:           attrs(s.Attributes),
					StatusError:          s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Resource:             res,
					Start:                time.Unix(0, int64(s.StartTimeUnixNano)),
					End:                  time.Unix(0, int64(s.EndTimeUnixNano)),
					InstrumentationScope: ss.GetScope().GetName(),
				})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(out)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = x.StringValue
		default:
			m[kv.Key] = anyText(v)
		}
	}
	return m
}

func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return v.String()
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Headers returns the headers of each export received.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// Trace returns the spans of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// WaitTrace waits up to d until the trace has at least n spans, and
// returns them.
func (r *Receiver) WaitTrace(tb testing.TB, traceID string, n int, d time.Duration) []Span {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		if s := r.Trace(traceID); len(s) >= n {
			return s
		} else if time.Now().After(deadline) {
			tb.Fatalf("trace %s: %d spans after %s, want %d: %+v", traceID, len(s), d, n, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
