// Command upstream is the benchmark's stand-in API: it answers every
// request with a small fixed body, as fast as net/http allows.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	flag.Parse()
	body := []byte(`{"ok":true,"data":"0123456789abcdef0123456789abcdef"}`)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
}
