package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/logbuf"
)

// TestAccessLogAllocs: the access line of a request, written as the
// process writes it (slog JSON into the asynchronous logbuf.Writer),
// allocates twice: the record's attributes beyond the five slog keeps
// inline (the line has nine), and slog's boxing of the float duration_ms
// for json.Marshal (which it calls for every float, to print floats as
// encoding/json does). The JSON buffer is pooled by slog, the Writer
// appends into a reused buffer, and redaction and the write happen on the
// Writer's goroutine.
func TestAccessLogAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	w := logbuf.New(io.Discard, 0)
	defer w.Close()
	g, err := New(Config{Authenticator: nopAuthn{}, Authorizer: nopAuthz{}, Logger: slog.New(slog.NewJSONHandler(w, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/x", nil)
	ex := &exchange{start: time.Now(), requestID: "01M8T7B5CXT7WXNN8SA2CDBWWV", trace: newTraceParent(""),
		route:     &route{Route: gatehouse.Route{Name: "api"}},
		principal: gatehouse.NewPrincipal("key_5jym7b6q2a2p6yyw", gatehouse.KindAPIKey, "k", []string{"read"}, "")}
	rec := &recorder{status: 200, bytes: 2}
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(1000, func() { g.logAccess(ctx, r, ex, rec) }); allocs > 2 {
		t.Fatalf("%.1f allocations per access line, budget 2", allocs)
	}
}
