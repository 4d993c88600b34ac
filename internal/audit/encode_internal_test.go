package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
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

func TestAppendEventDetails(t *testing.T) {
	e := gatehouse.Event{ID: "x", Type: "admin.key.create", Details: map[string]any{"b": 1, "a": []string{"x"}}}
	want, _ := json.Marshal(e)
	got, err := appendEvent(nil, &e)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %s (%v), want %s", got, err, want)
	}
}
