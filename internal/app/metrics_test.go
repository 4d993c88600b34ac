package app_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/metrics"
)

const scrapeToken = "scrape-token-0123456789abcdef0123456789"

// MustStartMetrics runs a Gatehouse with a scrape token, rate-limit tiers
// and a route whose breaker opens at the first failure.
func MustStartMetrics(t *testing.T) *harness {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "scrape-token")
	if err := os.WriteFile(tokenFile, []byte(scrapeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return MustStartFull(t, "metrics: {token_file: "+tokenFile+"}\n"+rateConfig, `  - name: flaky
    path: /flaky/
    upstream: http://127.0.0.1:2
    scopes: [demo:read]
    breaker: {consecutive_failures: 1, open_timeout: 1h}
`)
}

// scrape reads /metrics with the scrape token.
func (h *harness) scrape() metrics.Samples {
	h.t.Helper()
	res := h.do("GET", h.admin+"/metrics", nil, "Authorization: Bearer "+scrapeToken)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		h.t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	s, err := metrics.ParseText(strings.NewReader(string(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestMetricsMove: each counter moves when its event happens, through
// the real listeners: a proxied request, a denial, a missing and a revoked
// credential, a 429, an open breaker, the audit appends.
func TestMetricsMove(t *testing.T) {
	h := MustStartMetrics(t)
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals", "demo:read"}})
	free := h.createKey(map[string]any{"name": "f", "scopes": []string{"read:signals"}, "tier": "free"})
	revoked := h.createKey(map[string]any{"name": "x", "scopes": []string{"read:signals"}})
	if code := h.adminCall("POST", "/v1/keys/"+revoked.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	before := h.scrape()

	status := func(want int, method, path, key string) {
		t.Helper()
		var headers []string
		if key != "" {
			headers = append(headers, "X-API-Key: "+key)
		}
		if res := h.do(method, h.base+path, nil, headers...); res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	status(200, "GET", "/api/v1/signals/x", reader.Key)
	status(403, "POST", "/api/v1/signals/x", reader.Key) // lacks write:signals
	status(401, "GET", "/api/v1/signals/x", "")
	status(401, "GET", "/api/v1/signals/x", revoked.Key)
	status(200, "GET", "/api/v1/signals/x", free.Key)
	status(200, "GET", "/api/v1/signals/x", free.Key)
	status(429, "GET", "/api/v1/signals/x", free.Key) // the free tier's 2 a minute
	status(502, "GET", "/flaky/x", reader.Key)        // nothing listens: the breaker opens
	status(503, "GET", "/flaky/x", reader.Key)        // open
	status(404, "GET", "/nowhere", reader.Key)
	if code := h.adminCall("GET", "/v1/audit/checkpoint", nil, nil); code != 200 {
		t.Fatalf("checkpoint: %d", code)
	}
	after := h.scrape()

	for series, want := range map[string]float64{
		`gatehouse_requests_total{code="200",method="GET",route="signals-read"}`:   3,
		`gatehouse_requests_total{code="403",method="POST",route="signals-write"}`: 1,
		`gatehouse_requests_total{code="401",method="GET",route="signals-read"}`:   2,
		`gatehouse_requests_total{code="429",method="GET",route="signals-read"}`:   1,
		`gatehouse_requests_total{code="502",method="GET",route="flaky"}`:          1,
		`gatehouse_requests_total{code="503",method="GET",route="flaky"}`:          1,
		`gatehouse_requests_total{code="404",method="GET",route="(none)"}`:         1,
		`gatehouse_request_duration_seconds_count{route="signals-read"}`:           6,
		`gatehouse_upstream_duration_seconds_count{route="signals-read"}`:          3,
		`gatehouse_upstream_duration_seconds_count{route="flaky"}`:                 1, // the open breaker sends nothing
		`gatehouse_authz_decisions_total{allow="false"}`:                           1,
		`gatehouse_authz_decisions_total{allow="true"}`:                            5,
		`gatehouse_authn_failures_total{reason="missing"}`:                         1,
		`gatehouse_authn_failures_total{reason="revoked"}`:                         1,
		`gatehouse_ratelimit_rejections_total{tier="free"}`:                        1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if got := after[`gatehouse_breaker_state{upstream="http://127.0.0.1:2"}`]; got != metrics.BreakerOpen {
		t.Errorf("breaker state %v, want %d (open)", got, metrics.BreakerOpen)
	}
	// Every answered request is one audit event, appended through the
	// timed auditor; the entries gauge follows the log.
	if d := after["gatehouse_audit_append_seconds_count"] - before["gatehouse_audit_append_seconds_count"]; d < 10 {
		t.Errorf("audit appends moved by %v, want at least 10 (one per request)", d)
	}
	if d := after["gatehouse_audit_entries"] - before["gatehouse_audit_entries"]; d < 10 {
		t.Errorf("audit entries moved by %v, want at least 10", d)
	}
	if after["gatehouse_audit_append_errors_total"] != 0 {
		t.Errorf("audit append errors: %v", after["gatehouse_audit_append_errors_total"])
	}
	for _, series := range []string{"gatehouse_store_up", "gatehouse_ratelimit_backend_up", "gatehouse_ready"} {
		if after[series] != 1 {
			t.Errorf("%s = %v, want 1", series, after[series])
		}
	}
	if after["gatehouse_audit_checkpoint_timestamp_seconds"] == 0 {
		t.Errorf("audit checkpoint time %v before the first checkpoint, %v after", before["gatehouse_audit_checkpoint_timestamp_seconds"], after["gatehouse_audit_checkpoint_timestamp_seconds"])
	}
	if after[`gatehouse_secret_age_seconds{class="signing_key"}`] < 0 || after[`gatehouse_secret_age_seconds{class="api_key"}`] < 0 {
		t.Error("secret ages missing")
	}
	if len(after.Series("gatehouse_build_info")) != 1 || len(after.Series("go_goroutines")) != 1 || len(after.Series("process_cpu_seconds_total")) != 1 {
		t.Error("build info, Go or process collector missing")
	}
}

// TestMetricsLabelsHoldNoClientData: no label carries a path, a
// principal id, a key or a client-chosen method.
func TestMetricsLabelsHoldNoClientData(t *testing.T) {
	h := MustStartMetrics(t)
	k := h.createKey(map[string]any{"name": "n", "scopes": []string{"read:signals"}})
	h.do("GET", h.base+"/api/v1/signals/secret-path-segment", nil, "X-API-Key: "+k.Key)
	h.do("BREW", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+k.Key)
	h.do("GET", h.base+"/unrouted-path-segment", nil)
	res := h.do("GET", h.admin+"/metrics", nil, "Authorization: Bearer "+scrapeToken)
	body, _ := io.ReadAll(res.Body)
	for _, leak := range []string{"secret-path-segment", "unrouted-path-segment", "/api/v1", k.ID, k.Key, "BREW"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("the exposition holds %q", leak)
		}
	}
}

// TestMetricsAccess: /metrics needs a credential; the scrape token reads
// it and nothing else, and its scrapes are not audited one by one; an
// admin-API credential reads it as an audited read; refusals are audited.
func TestMetricsAccess(t *testing.T) {
	h := MustStartMetrics(t)
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"no credential", "/metrics", nil, 401},
		{"wrong token", "/metrics", []string{"Authorization: Bearer " + strings.Repeat("x", 40)}, 401},
		{"scrape token in X-API-Key", "/metrics", []string{"X-API-Key: " + scrapeToken}, 401},
		{"scrape token", "/metrics", []string{"Authorization: Bearer " + scrapeToken}, 200},
		{"scrape token elsewhere", "/v1/keys", []string{"Authorization: Bearer " + scrapeToken}, 401},
		{"scrape token, POST", "/metrics", []string{"Authorization: Bearer " + scrapeToken}, 405},
		{"admin token", "/metrics", []string{"Authorization: Bearer " + adminToken}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if strings.HasSuffix(tc.name, "POST") {
				method = "POST"
			}
			if res := h.do(method, h.admin+tc.path, nil, tc.headers...); res.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", method, tc.path, res.StatusCode, tc.want)
			}
		})
	}
	// A non-admin key cannot read metrics.
	k := h.createKey(map[string]any{"name": "plain", "scopes": []string{"read:signals"}})
	if res := h.do("GET", h.admin+"/metrics", nil, "Authorization: Bearer "+k.Key); res.StatusCode != 403 {
		t.Errorf("a key without the admin scope: %d, want 403", res.StatusCode)
	}

	var page struct {
		Entries []struct {
			Event struct {
				Type     string `json:"type"`
				Resource string `json:"resource"`
				Actor    struct {
					Kind string `json:"kind"`
				} `json:"actor"`
			} `json:"event"`
		} `json:"entries"`
	}
	if code := h.adminCall("GET", "/v1/audit?limit=1000", nil, &page); code != 200 {
		t.Fatalf("GET /v1/audit: %d", code)
	}
	reads, refusals := 0, 0
	for _, e := range page.Entries {
		switch {
		case e.Event.Type == "admin.read" && e.Event.Resource == "/metrics":
			reads++
		case strings.Contains(e.Event.Type, "denied") || strings.Contains(e.Event.Type, "refus") || strings.Contains(e.Event.Type, "failure"):
			refusals++
		}
	}
	if reads != 1 {
		t.Errorf("%d audited reads of /metrics, want 1 (the admin token's; scrape-token scrapes are not audited)", reads)
	}
	if refusals == 0 {
		t.Error("no refusal of /metrics audited")
	}
}
