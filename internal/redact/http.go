package redact

import (
	"mime"
	"net/http"
	"strings"
)

// ShouldRedact reports whether a body with these Content-Type and
// Content-Encoding header values is text the Redactor can scan: text/*,
// JSON (application/json, */*+json, application/x-ndjson), XML, YAML,
// JavaScript, GraphQL and form-encoded bodies, sent without a
// Content-Encoding other than identity. A missing Content-Type counts as
// text (fail closed). Compressed bodies are left alone: the redactor does
// not decode them.
func ShouldRedact(contentType, contentEncoding string) bool {
	if ce := strings.TrimSpace(contentEncoding); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	ct := strings.TrimSpace(contentType)
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// Unparseable parameters: judge by the type before them.
		mt, _, _ = strings.Cut(strings.ToLower(ct), ";")
		mt = strings.TrimSpace(mt)
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	major, sub, ok := strings.Cut(mt, "/")
	if !ok || major != "application" {
		return false
	}
	switch sub {
	case "json", "x-ndjson", "ndjson", "jsonl", "xml", "x-www-form-urlencoded",
		"javascript", "x-javascript", "ecmascript", "yaml", "x-yaml", "graphql",
		"problem+json", "problem+xml":
		return true
	}
	return strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
}

// RedactResponse makes res's body stream through r when its headers say it
// is text (see ShouldRedact) and leaves it alone otherwise. It suits
// httputil.ReverseProxy.ModifyResponse:
//
//	proxy.ModifyResponse = func(res *http.Response) error {
//		return redact.RedactResponse(res, redactor)
//	}
//
// Redaction changes the body length, so a redacted response loses its
// Content-Length header and gets res.ContentLength = -1: net/http then
// sends it chunked (HTTP/1.1) or unsized (HTTP/2). Because the body is
// rewritten, a strong ETag is weakened and Accept-Ranges is removed. Bodies
// of HEAD requests and of 204 and 304 responses are not touched. It never
// returns an error today; the signature leaves room for decoders.
func RedactResponse(res *http.Response, r *Redactor) error {
	if res == nil || res.Body == nil || res.Body == http.NoBody {
		return nil
	}
	if res.Request != nil && res.Request.Method == http.MethodHead {
		return nil
	}
	if res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified {
		return nil
	}
	if !ShouldRedact(res.Header.Get("Content-Type"), res.Header.Get("Content-Encoding")) {
		return nil
	}
	res.Body = r.ReadCloser(res.Body)
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	res.Header.Del("Accept-Ranges")
	if et := res.Header.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		res.Header.Set("Etag", "W/"+et)
	}
	return nil
}
