package httpjson_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse/internal/httpjson"
)

func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	before := time.Now().Add(-time.Millisecond)
	for range 1000 {
		id := httpjson.NewRequestID()
		u, err := ulid.ParseStrict(id)
		if err != nil {
			t.Fatalf("%q is not a ULID: %v", id, err)
		}
		if at := ulid.Time(u.Time()); at.Before(before) || at.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("%q is stamped %v, not now", id, at)
		}
		if seen[id] {
			t.Fatalf("%q handed out twice", id)
		}
		seen[id] = true
	}
	if n := testing.AllocsPerRun(100, func() { _ = httpjson.NewRequestID() }); n != 1 {
		t.Errorf("NewRequestID allocates %.0f times, want 1 (the string)", n)
	}
}

func TestRequestID(t *testing.T) {
	valid := httpjson.NewRequestID()
	for _, c := range []struct {
		name, in string
		kept     bool
	}{
		{"valid kept", valid, true},
		{"not a ulid", "not-a-request-id-at-all-xx", false},
		{"letter outside the alphabet", "01HZX3J5P6Q7R8S9T0V1W2X3YU", false},
		{"none", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if c.in != "" {
				r.Header.Set("X-Request-Id", c.in)
			}
			got := httpjson.RequestID(r)
			if c.kept != (got == c.in) {
				t.Fatalf("RequestID with %q = %q", c.in, got)
			}
			if _, err := ulid.ParseStrict(got); err != nil {
				t.Fatalf("RequestID = %q, not a ULID", got)
			}
		})
	}
}

// carrier is a context answering the request id key itself, as the
// gateway's exchange does.
type carrier struct {
	context.Context
	id string
}

func (c *carrier) Value(key any) any {
	if httpjson.IsRequestIDKey(key) {
		return c
	}
	return c.Context.Value(key)
}

func (c *carrier) RequestID() string { return c.id }

func TestRequestIDFromContext(t *testing.T) {
	type other struct{}
	for _, c := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"none", context.Background(), ""},
		{"with value", httpjson.NewContextWithRequestID(context.Background(), "r1"), "r1"},
		{"carrier", &carrier{Context: context.Background(), id: "r2"}, "r2"},
		{"under another value", context.WithValue(&carrier{Context: context.Background(), id: "r3"}, other{}, 1), "r3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := httpjson.RequestIDFromContext(c.ctx); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	if httpjson.IsRequestIDKey(struct{}{}) {
		t.Fatal("IsRequestIDKey took another key")
	}
}
