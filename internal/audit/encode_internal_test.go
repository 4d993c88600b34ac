package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/transparency-dev/merkle/rfc6962"
)

// FuzzAppendEvent holds the hand-written encoder to encoding/json's output.
func FuzzAppendEvent(f *testing.F) {
	f.Add("01HZX", int64(1700000000123456789), "request", "api_key", "k1", "GET", "/v1/x", "success", "", "GET", "/a<b>&c", 200, 3.25, "203.0.113.0", "req-1", "trace", false)
	f.Add("", int64(0), "a\u2028b", "", "", "\x00\x1f\"\\", "", "", "bad \xff utf8", "", "", 0, 1e-7, "", "", "", true)
	f.Add("x", int64(-5), "t", "k", "", "", "", "", "r\n\t", "M", "", -1, 1e21, "", "", "", true)
	f.Fuzz(func(t *testing.T, id string, ns int64, typ, kind, actorID, action, resource, outcome, reason, method, path string, status int, dur float64, ip, reqID, trace string, withReq bool) {
		e := gatehouse.Event{
			ID: id, Time: time.Unix(0, ns).UTC(), Type: typ,
			Actor:  gatehouse.Actor{Kind: kind, ID: actorID},
			Action: action, Resource: resource, Outcome: outcome, Reason: reason, TraceID: trace,
		}
		if withReq {
			e.Request = &gatehouse.RequestInfo{Method: method, Path: path, Status: status, DurationMS: dur, SourceIP: ip, RequestID: reqID}
		}
		want, werr := json.Marshal(e)
		got, gerr := appendEvent(nil, &e)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: json %v, ours %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("encoding differs:\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendEventDetails holds the details encoder to encoding/json's
// output for the value types written by hand and for those it hands over.
func TestAppendEventDetails(t *testing.T) {
	self := map[string]any{}
	self["self"] = self
	deep := map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": map[string]any{"e": 1}}}}}
	many := map[string]any{}
	for i := range 20 {
		many[string(rune('a'+i))] = i
	}
	type named string
	for _, c := range []struct {
		name    string
		details map[string]any
	}{
		{"sorted", map[string]any{"b": 1, "a": []string{"x"}}},
		{"decision", map[string]any{"decision_id": "01HZX3J5P6Q7R8S9T0V1W2X3Y4", "policy_revision": "sha256:96bb", "allow": false, "reasons": []string{"missing scope <bench>", "a&b"}}},
		{"scalars", map[string]any{"s": "x\"\n\u2028", "t": true, "n": nil, "i": -3, "i64": int64(1) << 62, "u64": uint64(1) << 63, "f": 3.25, "tiny": 1e-7, "huge": 1e21, "zero": 0.0}},
		{"nil list and map", map[string]any{"l": []string(nil), "m": map[string]any(nil), "e": []string{}}},
		{"escaped keys", map[string]any{"<b>": 1, "a&": 2, "\u2028": 3, "bad \xff": 4, "\xffz": 5, "z": 6}},
		{"nested", map[string]any{"controls": map[string]any{"z": []string{"a"}, "a": map[string]any{"ok": true}}}},
		{"handed over", map[string]any{"time": time.Date(2026, 12, 3, 6, 0, 0, 5, time.UTC), "named": named("k"), "ints": []int{1, 2}, "f32": float32(0.1), "any": []any{"a", 1.5, nil}, "bytes": []byte("hi")}},
		{"deep", deep},
		{"many", many},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := gatehouse.Event{ID: "x", Type: "admin.key.create", Details: c.details}
			want, werr := json.Marshal(e)
			got, gerr := appendEvent(nil, &e)
			if werr != nil || gerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %s (%v), want %s (%v)", got, gerr, want, werr)
			}
		})
	}
	for _, bad := range []map[string]any{{"nan": math.NaN()}, {"inf": map[string]any{"x": math.Inf(1)}}, {"self": self}, {"ch": make(chan int)}} {
		e := gatehouse.Event{ID: "x", Details: bad}
		if _, err := json.Marshal(e); err == nil {
			t.Fatalf("json.Marshal took %v", bad)
		}
		if _, err := appendEvent(nil, &e); err == nil {
			t.Errorf("appendEvent took details that encoding/json refuses: %v", bad)
		}
	}
}

// TestAppendDetailsAllocs: the request path's decision details are
// encoded without allocating.
func TestAppendDetailsAllocs(t *testing.T) {
	e := gatehouse.Event{ID: "x", Type: "http.request", Details: map[string]any{"decision_id": "01HZX3J5P6Q7R8S9T0V1W2X3Y4", "policy_revision": "sha256:96bb", "allow": true}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := appendEvent(buf[:0], &e); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("appendEvent allocates %.0f times for decision details, want 0", n)
	}
}

// TestHashChildren: the writer's interior node hash is RFC 6962's, with
// one allocation.
func TestHashChildren(t *testing.T) {
	for _, tt := range []struct {
		name string
		l, r []byte
	}{
		{"zeros", make([]byte, 32), make([]byte, 32)},
		{"leaves", rfc6962.DefaultHasher.HashLeaf([]byte("a")), rfc6962.DefaultHasher.HashLeaf([]byte("b"))},
		{"short", []byte("left"), []byte("right")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := hashChildren(tt.l, tt.r), rfc6962.DefaultHasher.HashChildren(tt.l, tt.r); !bytes.Equal(got, want) {
				t.Fatalf("hashChildren = %x, want %x", got, want)
			}
		})
	}
	l, r := make([]byte, 32), make([]byte, 32)
	if n := testing.AllocsPerRun(100, func() { _ = hashChildren(l, r) }); n != 1 {
		t.Fatalf("hashChildren: %v allocations, want 1", n)
	}
}
