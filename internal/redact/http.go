package redact

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ShouldRedact reports whether a body with these Content-Type and
// Content-Encoding header values is text the Redactor can scan: text/*,
// JSON (application/json, */*+json, application/x-ndjson), XML, YAML,
// JavaScript, GraphQL and form-encoded bodies, sent either unencoded
// (no Content-Encoding, or identity) or gzip-compressed, which
// RedactResponse decodes and re-encodes. A missing Content-Type counts as
// text (fail closed). Any other encoding (br, zstd, deflate, a chain of
// encodings) and every other type (images, archives, PDF, gRPC, multipart)
// are left alone.
func ShouldRedact(contentType, contentEncoding string) bool {
	switch encoding(contentEncoding) {
	case encIdentity, encGzip:
	default:
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
		"javascript", "x-javascript", "ecmascript", "yaml", "x-yaml", "graphql":
		return true
	}
	return strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
}

type enc uint8

const (
	encIdentity enc = iota
	encGzip
	encOther
)

func encoding(ce string) enc {
	ce = strings.TrimSpace(ce)
	switch {
	case ce == "" || strings.EqualFold(ce, "identity"):
		return encIdentity
	case strings.EqualFold(ce, "gzip") || strings.EqualFold(ce, "x-gzip"):
		return encGzip
	}
	return encOther
}

// RedactResponse makes res's body stream through r when its headers say it
// is text (see ShouldRedact) and leaves it alone otherwise. It suits
// httputil.ReverseProxy.ModifyResponse:
//
//	proxy.ModifyResponse = func(res *http.Response) error {
//		return redact.RedactResponse(res, redactor)
//	}
//
// The body is redacted as it streams; nothing is buffered beyond
// [MaxLookbehind]. Redaction changes the body length, so a redacted
// response loses its Content-Length header and gets res.ContentLength = -1:
// net/http then sends it chunked (HTTP/1.1) or unsized (HTTP/2). A gzip
// body is decompressed, redacted and compressed again (Content-Encoding
// stays gzip); if it turns out not to be valid gzip, reading the body fails
// and the proxy aborts the response rather than pass it on unredacted.
// Because the body is rewritten, a strong ETag is weakened and Accept-Ranges
// is removed. Bodies of HEAD requests and of 204 and 304 responses are not
// touched. It never returns an error today; the signature leaves room.
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
	ce := res.Header.Get("Content-Encoding")
	if len(res.Header.Values("Content-Encoding")) > 1 || !ShouldRedact(res.Header.Get("Content-Type"), ce) {
		return nil
	}
	if encoding(ce) == encGzip {
		res.Body = &gzipBody{r: r, src: res.Body}
	} else {
		res.Body = r.ReadCloser(res.Body)
	}
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	res.Header.Del("Accept-Ranges")
	if et := res.Header.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		res.Header.Set("Etag", "W/"+et)
	}
	return nil
}

// gzipBody decompresses src, redacts, and compresses again, chunk by chunk,
// flushing the compressor after each chunk so the body keeps streaming.
type gzipBody struct {
	r     *Redactor
	src   io.ReadCloser
	plain *Reader // redacted plain text
	zw    *gzip.Writer
	out   bytes.Buffer // compressed bytes not yet read
	buf   []byte
	err   error
}

// errNotGzip reports a body labelled gzip that is not.
var errNotGzip = errors.New("redact: body is not valid gzip")

func (g *gzipBody) Read(p []byte) (int, error) {
	for g.out.Len() == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.fill()
	}
	return g.out.Read(p)
}

func (g *gzipBody) fill() {
	if g.plain == nil {
		zr, err := gzip.NewReader(g.src)
		if err != nil {
			g.err = fmt.Errorf("%w: %v", errNotGzip, err)
			return
		}
		g.plain = g.r.Reader(zr)
		g.zw = gzip.NewWriter(&g.out)
		g.buf = make([]byte, readChunk)
	}
	n, err := g.plain.Read(g.buf)
	if n > 0 {
		g.zw.Write(g.buf[:n]) // writes to a bytes.Buffer: no error
		g.zw.Flush()
	}
	switch {
	case errors.Is(err, io.EOF):
		g.zw.Close()
		g.err = io.EOF
	case err != nil:
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %v", errNotGzip, err)
		}
		g.err = err
	}
}

func (g *gzipBody) Close() error { return g.src.Close() }
