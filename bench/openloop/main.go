// Command openloop is an open-loop HTTP load generator: it sends requests
// at a fixed rate whatever the server does, and measures each latency from
// the moment the request was due, not from when it was sent, so a server
// that stalls is charged for the requests queued behind the stall
// (coordinated omission, as wrk2 corrects it). bench/run.sh uses it to
// report the latency Gatehouse adds at a given share of the bare proxy's
// capacity.
//
//	openloop -url http://127.0.0.1:9102/api/x -rate 5000 -duration 10s -H "Authorization: Bearer …"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "target URL")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("c", 64, "most connections at once")
	header := flag.String("H", "", `one request header, "Name: value"`)
	flag.Parse()
	if *url == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "openloop: -url and a positive -rate are required")
		os.Exit(2)
	}
	name, value, _ := strings.Cut(*header, ": ")
	client := &http.Client{
		Transport: &http.Transport{MaxConnsPerHost: *conns, MaxIdleConnsPerHost: *conns, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
	n := int(*rate * duration.Seconds())
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now().Add(10 * time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			if name != "" {
				req.Header.Set(name, value)
			}
			res, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				failed[i] = res.StatusCode != http.StatusOK
			} else {
				failed[i] = true
			}
			lat[i] = time.Since(due)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	errors := 0
	for _, f := range failed {
		if f {
			errors++
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[min(int(p*float64(n)), n-1)].Microseconds()) / 1000 }
	// One line for bench/run.sh: sent rate p50 p90 p99 p999 (ms) errors.
	fmt.Printf("%d %.0f %.3f %.3f %.3f %.3f %d\n", n, float64(n)/elapsed.Seconds(), q(0.50), q(0.90), q(0.99), q(0.999), errors)
}
