package gateway

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gatehouse/gatehouse"
)

// compileSchema compiles a route's request-body schema.
func compileSchema(file string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	s, err := c.Compile(file)
	if err != nil {
		return nil, fmt.Errorf("compile JSON schema %s: %w", file, err)
	}
	return s, nil
}

// validateBody enforces the route's content types and JSON Schema. The
// body (already capped at max_body) is read, checked and replayed to the
// upstream.
func (g *Gateway) validateBody(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		rt := exchangeFrom(r.Context()).route
		hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
		if len(rt.ContentTypes) > 0 && hasBody {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || !slices.Contains(rt.ContentTypes, mt) {
				return gatehouse.Errorf(gatehouse.EUNSUPPORTED, "Content-Type %q is not accepted on route %s; use %s", r.Header.Get("Content-Type"), rt.Name, strings.Join(rt.ContentTypes, " or "))
			}
		}
		if rt.schema == nil || !hasBody {
			return next.ServeHTTP(w, r)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if exchangeFrom(r.Context()).tooLarge.Load() {
				return tooLarge(rt.MaxBody)
			}
			return gatehouse.Errorf(gatehouse.EINVALID, "could not read the request body")
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "request body is not valid JSON")
		}
		if err := rt.schema.Validate(inst); err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "request body: %s", schemaMessage(err))
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		return next.ServeHTTP(w, r)
	})
}

// schemaMessage names the first failing field and rule, e.g.
// "/amount: minimum: got -1, want 0".
func schemaMessage(err error) string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := "/" + strings.Join(ve.InstanceLocation, "/")
	rule := strings.Join(ve.ErrorKind.KeywordPath(), "/")
	return fmt.Sprintf("%s: %s: %s", loc, rule, ve.ErrorKind.LocalizedString(message.NewPrinter(language.English)))
}
