package app_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/metrics"
)

// TestMetricsSummaryEndpoint: GET /v1/metrics/summary counts the gateway's
// requests minute by minute (the sampler stepped by the fake clock),
// leaves out health probes, and is read by the roles that read /metrics
// only; the scrape token does not read it.
func TestMetricsSummaryEndpoint(t *testing.T) {
	h := MustStartMetrics(t)
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	if err := h.app.SampleMetrics(); err != nil { // the base, whatever Start's sampler took
		t.Fatal(err)
	}
	for range 3 {
		h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+reader.Key)
	}
	h.do("GET", h.base+"/api/v1/signals/x", nil)                            // 401
	h.do("POST", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+reader.Key) // 403
	for range 5 {
		h.do("GET", h.base+"/health", nil)
	}
	h.clock.Advance(time.Minute)
	if err := h.app.SampleMetrics(); err != nil {
		t.Fatal(err)
	}
	h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+reader.Key) // the current minute, read at the call

	h.do("GET", h.admin+"/v1/audit/checkpoint", nil, "Authorization: Bearer "+adminToken) // signs one
	var sum metrics.Summary
	if code := h.adminCall("GET", "/v1/metrics/summary", nil, &sum); code != 200 {
		t.Fatalf("GET /v1/metrics/summary: %d", code)
	}
	if sum.Requests != 6 || sum.Denied != 2 || sum.RateLimited != 0 {
		t.Fatalf("summary %d requests, %d denied, %d 429: want 6, 2, 0 (health left out): %+v", sum.Requests, sum.Denied, sum.RateLimited, sum)
	}
	// The minute before holds nothing (Start's sampler may or may not
	// have taken the base first); the one after the step all six, the
	// last of them read at the call.
	if n := len(sum.Minutes); n == 0 || n > 2 || sum.Minutes[n-1].Requests != 6 || sum.Minutes[n-1].Denied != 2 ||
		!sum.Minutes[n-1].Start.Equal(h.clock.Now().UTC().Truncate(time.Minute)) {
		t.Fatalf("minutes %+v, want the six in the current minute", sum.Minutes)
	}
	if sum.P99Seconds <= 0 || sum.AuditCheckpointAt.IsZero() {
		t.Fatalf("p99 %v, audit checkpoint %v", sum.P99Seconds, sum.AuditCheckpointAt)
	}

	plain := h.createKey(map[string]any{"name": "plain", "scopes": []string{"read:signals"}})
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
	}{
		{"no credential", "GET", "/v1/metrics/summary", nil, 401},
		{"scrape token", "GET", "/v1/metrics/summary", []string{"Authorization: Bearer " + scrapeToken}, 401},
		{"key without the admin scope", "GET", "/v1/metrics/summary", []string{"Authorization: Bearer " + plain.Key}, 403},
		{"POST", "POST", "/v1/metrics/summary", []string{"Authorization: Bearer " + adminToken}, 405},
		{"a parameter", "GET", "/v1/metrics/summary?minutes=5", []string{"Authorization: Bearer " + adminToken}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(tc.method, h.admin+tc.path, nil, tc.headers...)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.want {
				t.Fatalf("%d, want %d: %s", res.StatusCode, tc.want, body)
			}
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
				t.Fatalf("not a JSON error naming the problem: %s", body)
			}
		})
	}
}
