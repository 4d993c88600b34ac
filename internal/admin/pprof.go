package admin

import (
	"net/http"
	"net/http/pprof"

	"github.com/gatehouse/gatehouse"
)

// areaDebug is the runtime profiles of /debug/pprof/: no role but admin is
// granted it (a heap profile can hold fragments of any request).
const areaDebug area = "debug"

// mountPprof serves net/http/pprof under /debug/pprof/ on the admin API,
// behind the same authentication and role check as every admin call, each
// fetch an audited read. /debug/pprof/cmdline is not mounted (Index
// answers it 404): the command line says nothing a profile needs.
func (s *Server) mountPprof() {
	serve := func(h http.HandlerFunc) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, _ *gatehouse.Principal) error {
			h(w, r)
			return nil
		}
	}
	// Index also serves the named profiles (heap, goroutine, allocs,
	// block, mutex, threadcreate) under /debug/pprof/{name}.
	s.handle("/debug/pprof/", areaDebug, methods{http.MethodGet: serve(pprof.Index)})
	s.handle("/debug/pprof/profile", areaDebug, methods{http.MethodGet: serve(pprof.Profile)})
	s.handle("/debug/pprof/trace", areaDebug, methods{http.MethodGet: serve(pprof.Trace)})
	s.handle("/debug/pprof/symbol", areaDebug, methods{http.MethodGet: serve(pprof.Symbol), http.MethodPost: serve(pprof.Symbol)})
}
