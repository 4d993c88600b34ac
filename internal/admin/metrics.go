package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// metricsRoute serves GET /metrics, the Prometheus exposition, to two
// kinds of caller (DESIGN.md §7: nothing is read without a credential):
//
//   - the dedicated scrape token (metrics.token_file), a bearer token that
//     reads /metrics and nothing else, compared in constant time. Its
//     scrapes are not audited one by one: like health probes they come
//     every few seconds and would bury the trail, and they read counts
//     labelled with route names only, never a principal or a path;
//   - any admin-API credential whose role reads the metrics area (admin,
//     security, auditor), audited as every admin read is.
//
// Anything else is refused 401/403 and the refusal audited like any
// other admin refusal.
func (s *Server) metricsRoute() {
	serve := func(w http.ResponseWriter, r *http.Request, _ *gatehouse.Principal) error {
		s.cfg.Metrics.ServeHTTP(w, r)
		return nil
	}
	viaRole, allow := s.handler(areaMetrics, methods{http.MethodGet: serve, http.MethodHead: serve})
	s.route("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && s.scrapeToken(r) {
			s.cfg.Metrics.ServeHTTP(w, r)
			return
		}
		viaRole.ServeHTTP(w, r)
	}), allow...)
}

// scrapeToken reports whether r carries the dedicated scrape token.
func (s *Server) scrapeToken(r *http.Request) bool {
	if len(s.cfg.ScrapeToken) == 0 {
		return false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.cfg.ScrapeToken) == 1
}

// metricsSummary is GET /v1/metrics/summary: the public listener's
// requests, denials (401, 403), 429s and p99 latency minute by minute over
// the last hour (health probes left out), and the times of the latest
// audit checkpoint, backup and restore test: what the console's dashboard
// charts. The roles that read /metrics read it (an audited read).
func (s *Server) metricsSummary(w http.ResponseWriter, r *http.Request, _ *gatehouse.Principal) error {
	if len(r.URL.Query()) > 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "this endpoint takes no parameters")
	}
	sum, err := s.cfg.MetricsSummary()
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, sum)
	return nil
}
