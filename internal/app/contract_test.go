package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenAPI document is checked with a JSON Schema 2020-12 validator
// (OpenAPI 3.1 schemas are JSON Schema 2020-12) rather than an OpenAPI
// library: what the checks need — find the operation, compare statuses
// and media types, validate bodies — is a page of code, and the schemas
// themselves are compiled by the validator the gateway already uses.

// openAPIFile is the document, as embedded in the admin API.
const openAPIFile = "../admin/openapi.json"

// openAPIBase names the document for the schema compiler.
const openAPIBase = "https://gatehouse.invalid/openapi.json"

// errorSchema is the body of an error (the 405 of a method a path does
// not list).
const errorSchema = "/components/schemas/Error"

// contractDoc is the OpenAPI document, its schemas compiled.
type contractDoc struct {
	raw   []byte
	paths []*contractPath
	// schemas by JSON pointer (without '#') into the document.
	schemas map[string]*jsonschema.Schema
}

type contractPath struct {
	template  string
	segments  []string
	listeners []string
	anyMethod bool                   // x-gatehouse-any-method: one operation answers every method
	ops       map[string]*contractOp // by upper-case method
}

type contractOp struct {
	key         string // "METHOD /template"
	pointer     string
	query       map[string]string            // query parameter → schema pointer
	requestBody *contractBody                // nil: none
	responses   map[string]map[string]string // status → media type → schema pointer ("" none)
}

type contractBody struct {
	required bool
	media    map[string]string // media type → schema pointer
}

// loadContract reads and compiles the document once per test binary; the
// result is read-only.
var loadContract = sync.OnceValues(func() (*contractDoc, error) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", openAPIFile, err)
	}
	if doc.OpenAPI != "3.1.0" {
		return nil, fmt.Errorf("%s: openapi %q, want 3.1.0", openAPIFile, doc.OpenAPI)
	}
	whole, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openAPIBase, whole); err != nil {
		return nil, err
	}
	d := &contractDoc{raw: raw, schemas: map[string]*jsonschema.Schema{}}
	compile := func(ptr string) (string, error) {
		if _, ok := d.schemas[ptr]; ok {
			return ptr, nil
		}
		s, err := c.Compile(openAPIBase + "#" + ptr)
		if err != nil {
			return "", fmt.Errorf("compile %s: %w", ptr, err)
		}
		d.schemas[ptr] = s
		return ptr, nil
	}
	if _, err := compile(errorSchema); err != nil {
		return nil, err
	}
	for tmpl, item := range doc.Paths {
		p := &contractPath{template: tmpl, segments: strings.Split(tmpl, "/"), ops: map[string]*contractOp{}}
		if err := json.Unmarshal(item["x-gatehouse-listener"], &p.listeners); err != nil || len(p.listeners) == 0 {
			return nil, fmt.Errorf("%s: x-gatehouse-listener must list admin and/or public", tmpl)
		}
		p.anyMethod = string(item["x-gatehouse-any-method"]) == "true"
		for method, raw := range item {
			if strings.HasPrefix(method, "x-") {
				continue
			}
			ptr := "/paths/" + pointerEscape(tmpl) + "/" + method
			op, err := parseOperation(whole, raw, ptr, compile)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, tmpl, err)
			}
			op.key = strings.ToUpper(method) + " " + tmpl
			p.ops[strings.ToUpper(method)] = op
		}
		d.paths = append(d.paths, p)
	}
	return d, nil
})

// parseOperation reads the operation raw at pointer ptr of the document
// whole, compiling its schemas.
func parseOperation(whole any, raw json.RawMessage, ptr string, compile func(string) (string, error)) (*contractOp, error) {
	var o struct {
		OperationID string `json:"operationId"`
		Parameters  []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		RequestBody *struct {
			Required bool                       `json:"required"`
			Content  map[string]json.RawMessage `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Ref     string                     `json:"$ref"`
			Content map[string]json.RawMessage `json:"content"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	if o.OperationID == "" || len(o.Responses) == 0 {
		return nil, fmt.Errorf("needs an operationId and responses")
	}
	op := &contractOp{pointer: ptr, query: map[string]string{}, responses: map[string]map[string]string{}}
	for i, prm := range o.Parameters {
		if prm.In == "query" {
			s, err := compile(fmt.Sprintf("%s/parameters/%d/schema", ptr, i))
			if err != nil {
				return nil, err
			}
			op.query[prm.Name] = s
		}
	}
	if rb := o.RequestBody; rb != nil {
		op.requestBody = &contractBody{required: rb.Required, media: map[string]string{}}
		for mt := range rb.Content {
			s, err := compile(ptr + "/requestBody/content/" + pointerEscape(mt) + "/schema")
			if err != nil {
				return nil, err
			}
			op.requestBody.media[mt] = s
		}
	}
	for status, r := range o.Responses {
		base := ptr + "/responses/" + status
		content := r.Content
		if r.Ref != "" {
			// #/components/responses/X: its content is the shared one.
			base = strings.TrimPrefix(r.Ref, "#")
			var shared struct {
				Content map[string]json.RawMessage `json:"content"`
			}
			if err := json.Unmarshal(lookupPointer(whole, base), &shared); err != nil {
				return nil, err
			}
			content = shared.Content
		}
		media := map[string]string{}
		for mt := range content {
			s, err := compile(base + "/content/" + pointerEscape(mt) + "/schema")
			if err != nil {
				return nil, err
			}
			media[mt] = s
		}
		op.responses[status] = media
	}
	return op, nil
}

// lookupPointer returns the JSON value at pointer ptr of doc.
func lookupPointer(doc any, ptr string) json.RawMessage {
	v := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[tok]
	}
	b, _ := json.Marshal(v)
	return b
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// path finds the path item of listener serving p; literal segments win
// over {templated} ones.
func (d *contractDoc) path(listener, p string) *contractPath {
	segs := strings.Split(p, "/")
	var best *contractPath
	bestLiterals := -1
	for _, cp := range d.paths {
		if !slices.Contains(cp.listeners, listener) || len(cp.segments) != len(segs) {
			continue
		}
		literals, ok := 0, true
		for i, s := range cp.segments {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				ok = ok && segs[i] != ""
			case s == segs[i]:
				literals++
			default:
				ok = false
			}
		}
		if ok && literals > bestLiterals {
			best, bestLiterals = cp, literals
		}
	}
	return best
}

// exchange is one request and its response, as seen on the wire.
type exchange struct {
	listener, method, path string
	query                  url.Values
	reqType                string
	reqBody                []byte
	status                 int
	respType               string
	respBody               []byte
}

// check returns the operation that answered (its key, "" if the document
// does not describe the path) and how the exchange breaks the document.
func (d *contractDoc) check(x exchange) (string, []string) {
	cp := d.path(x.listener, x.path)
	if cp == nil {
		return "", nil
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	op := cp.ops[x.method]
	if op == nil && cp.anyMethod {
		op = cp.ops[http.MethodGet]
	}
	if op == nil {
		// Not a method of the path: 405, in the path's 405 shape if one
		// of its operations declares it, else an Error.
		if x.status != http.StatusMethodNotAllowed {
			fail("%s %s: the document lists no %s on this path, but it answered %d, not 405", x.method, cp.template, x.method, x.status)
			return "", problems
		}
		ptr := errorSchema
		for _, o := range cp.ops {
			for _, s := range o.responses["405"] {
				ptr = s
			}
		}
		if x.method != http.MethodHead {
			if err := d.validateJSON(ptr, x.respBody); err != nil {
				fail("%s %s: 405 body: %v", x.method, cp.template, err)
			}
		}
		return "", problems
	}
	media, ok := op.responses[strconv.Itoa(x.status)]
	if !ok {
		fail("%s answered %d, which the document does not declare (body %.300s)", op.key, x.status, x.respBody)
		return op.key, problems
	}
	if x.method != http.MethodHead {
		switch mt := mediaType(x.respType); {
		case len(media) == 0:
			if len(x.respBody) > 0 {
				fail("%s %d: the document declares no body, got %q: %.200s", op.key, x.status, x.respType, x.respBody)
			}
		case media[mt] == "":
			fail("%s %d: Content-Type %q is not one the document declares", op.key, x.status, x.respType)
		case isJSON(mt):
			if err := d.validateJSON(media[mt], x.respBody); err != nil {
				fail("%s %d: response body: %v\nbody: %.500s", op.key, x.status, err, x.respBody)
			}
		}
	}
	if x.status >= 200 && x.status < 300 {
		// What the server accepted, the document must allow.
		problems = append(problems, d.checkRequest(op, x)...)
	}
	return op.key, problems
}

func (d *contractDoc) checkRequest(op *contractOp, x exchange) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for name, vals := range x.query {
		ptr, ok := op.query[name]
		if !ok {
			fail("%s accepted query parameter %q, which the document does not declare", op.key, name)
			continue
		}
		for _, v := range vals {
			if err := d.validateParam(ptr, v); err != nil {
				fail("%s accepted %s=%q: %v", op.key, name, v, err)
			}
		}
	}
	rb := op.requestBody
	switch {
	case len(x.reqBody) == 0:
		if rb != nil && rb.required {
			fail("%s accepted a request without the body the document requires", op.key)
		}
	case rb == nil && (x.method == http.MethodGet || x.method == http.MethodHead):
		// A GET's body means nothing (RFC 9110 §9.3.1): it is ignored.
	case rb == nil:
		fail("%s accepted a request body, but the document declares none: %.200s", op.key, x.reqBody)
	default:
		mt := mediaType(x.reqType)
		if mt == "" && rb.media["application/json"] != "" {
			mt = "application/json" // the admin API reads a body without Content-Type as JSON
		}
		ptr, ok := rb.media[mt]
		switch {
		case !ok:
			fail("%s accepted a %q body, which the document does not declare", op.key, x.reqType)
		case mt == "application/octet-stream":
			// A file (a backup), opaque to the document.
		case mt == "application/x-www-form-urlencoded":
			form, err := url.ParseQuery(string(x.reqBody))
			if err != nil {
				fail("%s accepted a malformed form: %v", op.key, err)
				break
			}
			m := map[string]any{}
			for k, v := range form {
				m[k] = v[0]
			}
			b, _ := json.Marshal(m)
			if err := d.validateJSON(ptr, b); err != nil {
				fail("%s accepted a form outside its schema: %v", op.key, err)
			}
		default:
			if err := d.validateJSON(ptr, x.reqBody); err != nil {
				fail("%s accepted a request body outside its schema: %v\nbody: %.300s", op.key, err, x.reqBody)
			}
		}
	}
	return problems
}

func (d *contractDoc) validateJSON(ptr string, body []byte) error {
	s := d.schemas[ptr]
	if s == nil {
		return fmt.Errorf("no compiled schema at %s", ptr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return s.Validate(v)
}

// validateParam validates a query value, read as a number where it is one
// and the schema is not a string's.
func (d *contractDoc) validateParam(ptr, v string) error {
	s := d.schemas[ptr]
	if err := s.Validate(v); err == nil {
		return nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if err := s.Validate(json.Number(strconv.FormatFloat(n, 'f', -1, 64))); err == nil {
			return nil
		}
	}
	return s.Validate(v)
}

func mediaType(ct string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt
}

func isJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// contractTransport sends requests and checks every exchange with a
// listener of the harness against the document, reporting each breach as
// a test error. It records which operations answered.
type contractTransport struct {
	t             testing.TB
	doc           *contractDoc
	admin, public string // host:port
	base          http.RoundTripper

	mu   sync.Mutex
	seen map[string]bool
}

func newContractTransport(t testing.TB, admin, public string) *contractTransport {
	t.Helper()
	doc, err := loadContract()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	return &contractTransport{t: t, doc: doc, admin: admin, public: public, base: http.DefaultTransport, seen: map[string]bool{}}
}

// CloseIdleConnections closes the base transport's idle connections.
func (ct *contractTransport) CloseIdleConnections() {
	if t, ok := ct.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	listener := ""
	switch req.URL.Host {
	case ct.admin:
		listener = "admin"
	case ct.public:
		listener = "public"
	}
	if listener == "" || ct.doc.path(listener, req.URL.Path) == nil {
		return ct.base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := ct.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(respBody))
	key, problems := ct.doc.check(exchange{
		listener: listener, method: req.Method, path: req.URL.Path, query: req.URL.Query(),
		reqType: req.Header.Get("Content-Type"), reqBody: reqBody,
		status: res.StatusCode, respType: res.Header.Get("Content-Type"), respBody: respBody,
	})
	for _, p := range problems {
		ct.t.Errorf("OpenAPI contract (%s listener): %s", listener, p)
	}
	if key != "" {
		ct.mu.Lock()
		ct.seen[key] = true
		ct.mu.Unlock()
	}
	return res, nil
}

// unseen lists the document's operations no exchange reached.
func (ct *contractTransport) unseen() []string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	var out []string
	for _, p := range ct.doc.paths {
		for _, op := range p.ops {
			if !ct.seen[op.key] {
				out = append(out, op.key)
			}
		}
	}
	slices.Sort(out)
	return out
}
