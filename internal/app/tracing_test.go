package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/tracing/tracingtest"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// spanAttrs are the only attribute keys a span of the request path may
// carry: each of a small, fixed set of values (no path, address, key id,
// principal id or request id).
var spanAttrs = []string{
	"http.request.method", "http.route", "http.response.status_code", "server.address", "error.type",
	"gatehouse.route", "gatehouse.outcome", "gatehouse.principal.kind", "gatehouse.authn.result",
	"gatehouse.ratelimit.policy", "gatehouse.allowed", "gatehouse.audit.event_type",
}

// accessTraceID is the trace_id of the access line of the request with
// request id rid.
func (h *harness) accessTraceID(rid string) string {
	h.t.Helper()
	for line := range strings.Lines(h.logs.String()) {
		var l struct {
			Msg     string `json:"msg"`
			Gateway struct {
				RequestID string `json:"request_id"`
				TraceID   string `json:"trace_id"`
			} `json:"gateway"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Gateway.RequestID == rid {
			return l.Gateway.TraceID
		}
	}
	h.t.Fatalf("no access line for request %s", rid)
	return ""
}

// auditTraceID is the trace_id of the audit event of request rid.
func (h *harness) auditTraceID(rid string) string {
	h.t.Helper()
	for _, e := range h.auditEvents("") {
		if req, _ := e["request"].(map[string]any); req != nil && req["request_id"] == rid {
			id, _ := e["trace_id"].(string)
			return id
		}
	}
	h.t.Fatalf("no audit event for request %s", rid)
	return ""
}

func byName(spans []tracingtest.Span) map[string]tracingtest.Span {
	m := map[string]tracingtest.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestTracingThroughTheGateway: a request through the real public listener
// is exported to an OTLP/HTTP collector as a server span continuing the
// caller's traceparent, with one child per step of the request path; the
// upstream, the access log and the audit event carry the same trace id;
// attributes are low-cardinality and never name the key.
func TestTracingThroughTheGateway(t *testing.T) {
	recv := tracingtest.MustStart(t)
	secretDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(secretDir, "otlp-token"), []byte("Bearer collector-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := MustStartWith(t, "secrets: {dir: "+secretDir+"}\ntracing:\n  endpoint: "+recv.Server.URL+"\n  batch_timeout: 50ms\n  headers: {X-Tenant: acme}\n  header_secrets: {authorization: otlp-token}\n")
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})

	res := h.do("GET", h.base+"/api/v1/signals/x?token=querysecret", nil, "Authorization: Bearer "+k.Key,
		"Traceparent: 00-"+callerTrace+"-"+callerSpan+"-01", "Tracestate: vendor=abc")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	rid := res.Header.Get("X-Request-Id")
	spans := recv.WaitTrace(t, callerTrace, 6, 15*time.Second)
	named := byName(spans)
	server := named["GET /api/v1/signals/"]
	if server.SpanID == "" || server.Kind != 2 /* SERVER */ {
		t.Fatalf("no server span GET /api/v1/signals/ in %+v", spans)
	}
	if server.ParentSpanID != callerSpan {
		t.Errorf("server span's parent = %q, want the caller's span %s", server.ParentSpanID, callerSpan)
	}
	if server.TraceState != "vendor=abc" {
		t.Errorf("server span tracestate = %q", server.TraceState)
	}
	for _, name := range []string{"gatehouse.authn", "gatehouse.ratelimit", "gatehouse.authz", "gatehouse.upstream", "gatehouse.audit.append"} {
		s, ok := named[name]
		if !ok {
			t.Errorf("no %s span", name)
			continue
		}
		if s.ParentSpanID != server.SpanID {
			t.Errorf("%s's parent = %s, want the server span %s", name, s.ParentSpanID, server.SpanID)
		}
		if s.Start.Before(server.Start) || s.End.After(server.End) {
			t.Errorf("%s [%v, %v] is not within the server span [%v, %v]", name, s.Start, s.End, server.Start, server.End)
		}
	}
	want := map[string]string{"http.route": "/api/v1/signals/", "gatehouse.route": "signals-read", "http.response.status_code": "200",
		"http.request.method": "GET", "gatehouse.principal.kind": "api_key", "gatehouse.outcome": "success"}
	for key, v := range want {
		if server.Attributes[key] != v {
			t.Errorf("server span %s = %q, want %q (all: %v)", key, server.Attributes[key], v, server.Attributes)
		}
	}
	if a := named["gatehouse.authn"].Attributes; a["gatehouse.authn.result"] != "authenticated" {
		t.Errorf("authn span attributes %v", a)
	}
	if a := named["gatehouse.authz"].Attributes; a["gatehouse.allowed"] != "true" {
		t.Errorf("authz span attributes %v", a)
	}
	if a := named["gatehouse.ratelimit"].Attributes; a["gatehouse.allowed"] != "true" || a["gatehouse.ratelimit.policy"] != "default" {
		t.Errorf("ratelimit span attributes %v", a)
	}
	up := named["gatehouse.upstream"]
	if up.Kind != 3 /* CLIENT */ || up.Attributes["http.response.status_code"] != "200" || up.Attributes["server.address"] != strings.TrimPrefix(h.up.URL, "http://") {
		t.Errorf("upstream span kind %v attributes %v", up.Kind, up.Attributes)
	}
	for _, s := range spans {
		if s.Resource["service.name"] != "gatehouse" || s.InstrumentationScope != tracing.InstrumentationName {
			t.Errorf("%s: resource %v scope %q", s.Name, s.Resource, s.InstrumentationScope)
		}
		for key, v := range s.Attributes {
			if !slices.Contains(spanAttrs, key) {
				t.Errorf("%s carries attribute %s=%q, not one of the low-cardinality set", s.Name, key, v)
			}
			for _, secret := range []string{k.ID, k.Key, k.Key[:12], "querysecret", rid} {
				if strings.Contains(v, secret) {
					t.Errorf("%s attribute %s=%q names the key, the query or the request id", s.Name, key, v)
				}
			}
		}
	}

	// The upstream continues from the upstream span, in the same trace.
	got, _ := h.up.lastRequest()
	if tp := got.Header.Get("Traceparent"); tp != "00-"+callerTrace+"-"+up.SpanID+"-01" {
		t.Errorf("upstream traceparent %q, want 00-%s-%s-01", tp, callerTrace, up.SpanID)
	}
	if ts := got.Header.Get("Tracestate"); ts != "vendor=abc" {
		t.Errorf("upstream tracestate %q", ts)
	}
	if id := h.accessTraceID(rid); id != callerTrace {
		t.Errorf("access log trace_id %q, want %s", id, callerTrace)
	}
	if id := h.auditTraceID(rid); id != callerTrace {
		t.Errorf("audit event trace_id %q, want %s", id, callerTrace)
	}
	hs := recv.Headers()
	if len(hs) == 0 || hs[0].Get("X-Tenant") != "acme" || hs[0].Get("Authorization") != "Bearer collector-secret" {
		t.Errorf("export headers %v: want X-Tenant: acme and the secret's Authorization", hs)
	}
	if strings.Contains(h.logs.String(), "collector-secret") {
		t.Error("the collector credential appears in the logs")
	}
	loaded := false
	for _, e := range h.auditEvents("") {
		if b, _ := json.Marshal(e); strings.Contains(string(b), "collector-secret") {
			t.Errorf("the collector credential appears in audit event %s", b)
		} else if strings.Contains(string(b), "otlp-token") {
			loaded = true
		}
	}
	if !loaded {
		t.Error("no audit event names the secret otlp-token as loaded")
	}

	// A request refused at authentication: server span and authn span,
	// nothing past it, and no credential in any attribute.
	res = h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer gk_aaaaaaaaaaaaaaaa_bad",
		"Traceparent: 00-"+strings.Repeat("ab", 16)+"-"+callerSpan+"-01")
	if res.StatusCode != 401 {
		t.Fatalf("bad key: status %d", res.StatusCode)
	}
	refused := byName(recv.WaitTrace(t, strings.Repeat("ab", 16), 3, 15*time.Second))
	if _, ok := refused["gatehouse.upstream"]; ok {
		t.Error("a refused request has an upstream span")
	}
	if a := refused["gatehouse.authn"].Attributes; a["error.type"] != "unauthenticated" || a["gatehouse.authn.result"] == "" {
		t.Errorf("refused authn span attributes %v", a)
	}
	if s := refused["GET /api/v1/signals/"]; s.Attributes["http.response.status_code"] != "401" || s.Attributes["gatehouse.outcome"] != "denied" || s.StatusError {
		t.Errorf("refused server span %+v", s)
	}
	if _, ok := refused["gatehouse.audit.append"]; !ok {
		t.Error("a refused request's audit append has no span")
	}

	// The decision API runs the same steps, under its own fixed path.
	decision := strings.Repeat("12", 16)
	res = h.do("POST", h.base+"/v1/authorize", strings.NewReader(`{"action": "tool.execute", "resource": "tool:web_search"}`),
		"Authorization: Bearer "+k.Key, "Content-Type: application/json", "Traceparent: 00-"+decision+"-"+callerSpan+"-01")
	if res.StatusCode != 200 {
		t.Fatalf("/v1/authorize: status %d", res.StatusCode)
	}
	decided := byName(recv.WaitTrace(t, decision, 5, 15*time.Second))
	srv, ok := decided["POST /v1/authorize"]
	if !ok || srv.Attributes["http.route"] != "/v1/authorize" {
		t.Errorf("decision API spans %v", decided)
	}
	for _, name := range []string{"gatehouse.authn", "gatehouse.ratelimit", "gatehouse.authz", "gatehouse.audit.append"} {
		if decided[name].ParentSpanID != srv.SpanID || srv.SpanID == "" {
			t.Errorf("decision API: %s is not a child of the server span", name)
		}
	}

	// Health probes are neither audited nor traced.
	probe := strings.Repeat("34", 16)
	if res := h.do("GET", h.base+"/health", nil, "Traceparent: 00-"+probe+"-"+callerSpan+"-01"); res.StatusCode != 200 {
		t.Fatalf("/health: status %d", res.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // six batch timeouts
	if s := recv.Trace(probe); len(s) != 0 {
		t.Errorf("a health probe was traced: %+v", s)
	}
}

// TestTracingAbuse: what a caller sends cannot break the trace, force the
// sampling decision or grow what is exported and forwarded.
func TestTracingAbuse(t *testing.T) {
	recv := tracingtest.MustStart(t)
	h := MustStartWith(t, "tracing:\n  endpoint: "+recv.URL()+"\n  batch_timeout: 50ms\n")
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})

	t.Run("malformed traceparent starts a new trace", func(t *testing.T) {
		for _, bad := range []string{
			"00-" + callerTrace + "-" + callerSpan,                          // no flags
			"00-" + strings.ToUpper(callerTrace) + "-" + callerSpan + "-01", // upper case
			"00-00000000000000000000000000000000-" + callerSpan + "-01",     // zero trace id
			"ff-" + callerTrace + "-" + callerSpan + "-01",                  // version ff
			"00-" + callerTrace + "-" + callerSpan + "-01-extra",            // extra field in version 00
			"garbage",
		} {
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key, "Traceparent: "+bad, "Tracestate: vendor=abc")
			if res.StatusCode != 200 {
				t.Fatalf("%q: status %d", bad, res.StatusCode)
			}
			rid := res.Header.Get("X-Request-Id")
			id := h.auditTraceID(rid)
			if id == callerTrace || len(id) != 32 || strings.Trim(id, "0") == "" {
				t.Errorf("%q: audit trace id %q, want a new one", bad, id)
			}
			if lid := h.accessTraceID(rid); lid != id {
				t.Errorf("%q: access log trace id %q, audit %q", bad, lid, id)
			}
			spans := recv.WaitTrace(t, id, 6, 15*time.Second)
			for _, s := range spans {
				if s.Kind == 2 && s.ParentSpanID != "" {
					t.Errorf("%q: server span has parent %s", bad, s.ParentSpanID)
				}
				if s.TraceState != "" {
					t.Errorf("%q: the tracestate of an ignored traceparent was kept: %q", bad, s.TraceState)
				}
			}
			got, _ := h.up.lastRequest()
			if tp := got.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+id+"-") {
				t.Errorf("%q: upstream traceparent %q, want trace %s", bad, tp, id)
			}
			if ts := got.Header.Values("Tracestate"); len(ts) != 0 {
				t.Errorf("%q: upstream got tracestate %q of an ignored traceparent", bad, ts)
			}
		}
	})

	t.Run("huge tracestate is cut to 512 bytes", func(t *testing.T) {
		members := []string{"first=1"}
		for i := 0; i < 31; i++ {
			members = append(members, "k"+strings.Repeat(string(rune('a'+i%26)), 3)+string(rune('a'+i/26))+"="+strings.Repeat("v", 240))
		}
		members[5] = "small=2"
		huge := strings.Join(members, ",") // ~7.7 KB, 32 members
		trace := strings.Repeat("cd", 16)
		res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key, "Traceparent: 00-"+trace+"-"+callerSpan+"-01", "Tracestate: "+huge)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		got, _ := h.up.lastRequest()
		ts := got.Header.Values("Tracestate")
		if len(ts) != 1 || len(ts[0]) > tracing.MaxTraceState || !strings.HasPrefix(ts[0], "first=1,") || !strings.Contains(ts[0], "small=2") {
			all := strings.Join(ts, ",")
			t.Errorf("upstream tracestate %.80q… (%d bytes in %d lines): want at most %d, the small members kept in order", all, len(all), len(ts), tracing.MaxTraceState)
		}
		for _, s := range recv.WaitTrace(t, trace, 6, 15*time.Second) {
			if len(s.TraceState) > tracing.MaxTraceState {
				t.Errorf("%s exported with a %d-byte tracestate", s.Name, len(s.TraceState))
			}
		}
	})

	t.Run("unknown method is not a span name", func(t *testing.T) {
		trace := strings.Repeat("ef", 16)
		res := h.do("FROBNICATE", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key, "Traceparent: 00-"+trace+"-"+callerSpan+"-01")
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", res.StatusCode)
		}
		spans := recv.WaitTrace(t, trace, 2, 15*time.Second)
		for _, s := range spans {
			if strings.Contains(s.Name, "FROBNICATE") || s.Attributes["http.request.method"] == "FROBNICATE" {
				t.Errorf("span %q carries the caller's method: %v", s.Name, s.Attributes)
			}
		}
		if s := byName(spans)["HTTP"]; s.Attributes["http.request.method"] != "_OTHER" {
			t.Errorf("no server span HTTP with method _OTHER in %+v", spans)
		}
	})
}

// TestTracingSamplingIsOurs: with sample_ratio 0 a caller's sampled flag
// records nothing, and the upstream is told the trace is not sampled; only
// trust_parent_sampling, for a request through a trusted proxy, follows it.
func TestTracingSamplingIsOurs(t *testing.T) {
	for _, tt := range []struct {
		name, extra string
		recorded    bool
	}{
		{"caller's flag ignored", "", false},
		{"trusted only through trusted proxies", "  trust_parent_sampling: true\n", false},
		{"trusted proxy's flag followed", "  trust_parent_sampling: true\ntrusted_proxies: [127.0.0.1]\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recv := tracingtest.MustStart(t)
			h := MustStartWith(t, "tracing:\n  endpoint: "+recv.URL()+"\n  batch_timeout: 50ms\n  sample_ratio: 0\n"+tt.extra)
			k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key, "Traceparent: 00-"+callerTrace+"-"+callerSpan+"-01")
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			got, _ := h.up.lastRequest()
			tp := got.Header.Get("Traceparent")
			if !strings.HasPrefix(tp, "00-"+callerTrace+"-") || strings.Contains(tp, callerSpan) {
				t.Errorf("upstream traceparent %q: want the caller's trace, our span", tp)
			}
			if id := h.auditTraceID(res.Header.Get("X-Request-Id")); id != callerTrace {
				t.Errorf("audit trace id %q", id)
			}
			if tt.recorded {
				recv.WaitTrace(t, callerTrace, 6, 15*time.Second)
				if !strings.HasSuffix(tp, "-01") {
					t.Errorf("upstream traceparent %q: want sampled", tp)
				}
				return
			}
			if !strings.HasSuffix(tp, "-00") {
				t.Errorf("upstream traceparent %q: want not sampled, our decision", tp)
			}
			time.Sleep(500 * time.Millisecond) // ten batch timeouts
			if s := recv.Spans(); len(s) != 0 {
				t.Errorf("sample_ratio 0 exported %d spans: %+v", len(s), s)
			}
		})
	}
}

// TestTracingOffKeepsTraceparent: without a tracing section the upstream
// traceparent is as before (the caller's trace, a new span, the caller's
// flags), and a tracestate goes with the traceparent it came with only.
func TestTracingOffKeepsTraceparent(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	for _, tt := range []struct {
		name, traceparent string
		wantState         bool
	}{
		{"valid", "00-" + callerTrace + "-" + callerSpan + "-01", true},
		{"malformed", "00-" + callerTrace + "-xyz-01", false},
	} {
		res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key, "Traceparent: "+tt.traceparent, "Tracestate: vendor=abc")
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", tt.name, res.StatusCode)
		}
		got, _ := h.up.lastRequest()
		tp := got.Header.Get("Traceparent")
		if continued := strings.HasPrefix(tp, "00-"+callerTrace+"-") && strings.HasSuffix(tp, "-01") && !strings.Contains(tp, callerSpan); continued != tt.wantState {
			t.Errorf("%s: upstream traceparent %q", tt.name, tp)
		}
		if ts := got.Header.Get("Tracestate"); (ts == "vendor=abc") != tt.wantState {
			t.Errorf("%s: upstream tracestate %q", tt.name, ts)
		}
		if id := h.auditTraceID(res.Header.Get("X-Request-Id")); id != tp[3:35] {
			t.Errorf("%s: audit trace id %q, upstream %q", tt.name, id, tp)
		}
	}
}
