package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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

// CheckSchema reports whether file is a JSON Schema a route can use (it
// reads and compiles it), for checking a config before serving it.
func CheckSchema(file string) error {
	_, err := compileSchema(file)
	if sve, ok := errors.AsType[*jsonschema.SchemaValidationError](err); ok {
		return fmt.Errorf("not a valid JSON Schema: %s", schemaMessage(sve.Err))
	}
	return err
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
			if exchangeFrom(r.Context()).slowBody.Load() {
				return bodyTooSlow()
			}
			return gatehouse.Errorf(gatehouse.EINVALID, "could not read the request body")
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "request body is not valid JSON")
		}
		if err := checkOneReading(body); err != nil {
			return err
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
	// Some kinds' texts start with their keyword ("minimum: got -1, want
	// 0"), others do not ("missing property 'sku'"): name it once.
	text := strings.TrimPrefix(ve.ErrorKind.LocalizedString(message.NewPrinter(language.English)), rule+": ")
	return fmt.Sprintf("%s: %s: %s", loc, rule, text)
}

// checkOneReading refuses JSON that parsers read differently: an object
// with the same key twice (some keep the first, some the last, some
// merge), and text that is not valid UTF-8 (some replace it, some refuse
// it, some pass the bytes through). Keys are compared after unescaping,
// so "a" and "\u0061" are the same key, and under Unicode case folding,
// since Go's encoding/json and .NET bind "Role" to a field role: a schema
// that checks "role" would otherwise let "Role" decide. It assumes body is otherwise
// valid JSON (the schema step parses it first).
func checkOneReading(body []byte) error {
	if !utf8.Valid(body) {
		return gatehouse.Errorf(gatehouse.EINVALID, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// Each open object or array, with the member key it is the value of
	// (keyed false inside an array); the path is joined only for an error.
	type frame struct {
		keys   map[string]string // folded key → key as sent
		object bool
		key    string
		keyed  bool
	}
	var stack []frame
	pathOf := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.keyed {
				b.WriteString("/")
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	expectKey := false
	key, keyed := "", false // the member whose value comes next
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "request body is not valid JSON")
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{object: t == '{', key: key, keyed: keyed})
				expectKey, keyed = t == '{', false
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if expectKey {
				top := &stack[len(stack)-1]
				if top.keys == nil {
					top.keys = map[string]string{}
				}
				folded := foldKey(t)
				if first, dup := top.keys[folded]; dup {
					if first == t {
						return gatehouse.Errorf(gatehouse.EINVALID, "request body: %s/%s: duplicate object key", pathOf(), t)
					}
					return gatehouse.Errorf(gatehouse.EINVALID, "request body: %s: keys %q and %q differ only in case; parsers that match keys case-insensitively would read either", pathOf(), first, t)
				}
				top.keys[folded] = t
				key, keyed = t, true
				expectKey = false
				continue
			}
		}
		// A value ended: inside an object the next token is a key.
		if n := len(stack); n > 0 {
			expectKey = stack[n-1].object
		}
		keyed = false
	}
}

// foldKey maps every rune of s to one member of its case-folding orbit
// (the smallest, in lower case when that is an ASCII letter), so keys
// equal under simple folding (K, k and the Kelvin sign among them) map
// alike.
func foldKey(s string) string {
	ascii, upper := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if ascii && !upper {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		if 'A' <= min && min <= 'Z' {
			min += 'a' - 'A'
		}
		b = append(b, min)
	}
	return string(b)
}
