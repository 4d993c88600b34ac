package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

type health struct {
	checks   []ReadinessCheck
	version  string
	draining atomic.Bool
}

func isHealthPath(p string) bool {
	return p == "/health" || p == "/health/live" || p == "/health/ready"
}

type checkResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Ready reports what /health/ready answers: not draining, and every
// critical check passing.
func (g *Gateway) Ready(ctx context.Context) bool {
	if g.health.draining.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, c := range g.health.checks {
		if c.Critical && c.Check(ctx) != nil {
			return false
		}
	}
	return true
}

// serve answers the health endpoints. The public listener shows status
// only (detailed false): no version, no dependency names or errors that
// would tell a caller what to attack. The admin listener shows everything.
func (h *health) serve(w http.ResponseWriter, r *http.Request, detailed bool) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return gatehouse.Errorf(gatehouse.EMETHOD, "use GET on %s", r.URL.Path)
	}
	switch r.URL.Path {
	case "/health/live":
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	case "/health":
		if !detailed {
			httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
			return nil
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok", "version": h.version})
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	ready := !h.draining.Load()
	checks := map[string]checkResult{"config": {OK: true}}
	for _, c := range h.checks {
		if err := c.Check(ctx); err != nil {
			checks[c.Name] = checkResult{Error: err.Error()}
			if c.Critical {
				ready = false
			}
		} else {
			checks[c.Name] = checkResult{OK: true}
		}
		if c.Detail != nil {
			res := checks[c.Name]
			res.Detail = c.Detail()
			checks[c.Name] = res
		}
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	if h.draining.Load() {
		status = "draining"
	}
	if !detailed {
		httpjson.Write(w, code, map[string]string{"status": status})
		return nil
	}
	httpjson.Write(w, code, map[string]any{"status": status, "checks": checks})
	return nil
}

// HealthHandler serves /health, /health/live and /health/ready with every
// detail (version, each readiness check with its error and state), for the
// admin listener. The public listener answers the same paths with the
// status alone.
func (g *Gateway) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.health.serve(w, r, true); err != nil {
			httpjson.WriteError(w, r, g.log, err)
		}
	})
}
