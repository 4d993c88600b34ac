package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
)

// EchoHandler is the built-in demo upstream: it answers with a JSON
// description of the request it received, so a newcomer can see what
// Gatehouse passes upstream (and what it strips).
func EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		headers := map[string]string{}
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			headers[k] = strings.Join(r.Header[k], ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"echo":       true,
			"method":     r.Method,
			"path":       r.URL.Path,
			"query":      r.URL.RawQuery,
			"headers":    headers,
			"body_bytes": n,
		})
	})
}
