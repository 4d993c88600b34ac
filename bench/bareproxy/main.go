// Command bareproxy is the benchmark's baseline: a bare
// httputil.ReverseProxy with the same tuned Transport Gatehouse uses, and
// nothing else (no auth, no headers, no logs).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:9100", "upstream URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: gateway.NewTransport(),
	}
	log.Fatal(http.ListenAndServe(*addr, p))
}
