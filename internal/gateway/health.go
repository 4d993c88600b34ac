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

func (h *health) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return gatehouse.Errorf(gatehouse.EMETHOD, "use GET on %s", r.URL.Path)
	}
	switch r.URL.Path {
	case "/health/live":
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	case "/health":
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
	httpjson.Write(w, code, map[string]any{"status": status, "checks": checks})
	return nil
}
