package admin

import (
	_ "embed"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// openAPI is the OpenAPI 3.1 document of the admin API and of the public
// listener's own endpoints (not the configured routes). The test in
// internal/app/openapi_test.go checks it against every registered route
// and every response the tests' requests get, so it cannot drift from the
// code.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /v1/openapi.json. It needs no credential: the
// document is the one in the source, the same for every deployment, and
// tells nothing of this one's keys, users or state.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, r, s.log, gatehouse.Errorf(gatehouse.EMETHOD, "use GET on %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(openAPI)
}
