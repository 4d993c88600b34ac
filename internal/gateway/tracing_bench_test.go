package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/tracing/tracingtest"
)

// BenchmarkProxyPathTraced is BenchmarkProxyPath's gatehouse case with
// tracing on, exporting to an in-process collector: every request
// recorded (sampled), or none (on, sample_ratio 0). Tracing off is
// BenchmarkProxyPath/gatehouse itself.
func BenchmarkProxyPathTraced(b *testing.B) {
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"sampled", 1}, {"unsampled", 0}} {
		b.Run(c.name, func(b *testing.B) {
			recv := tracingtest.MustStart(b)
			p, err := tracing.New(context.Background(), tracing.Config{URL: recv.URL(), SampleRatio: c.ratio, ServiceName: "bench", BatchTimeout: 100 * time.Millisecond, QueueSize: 1 << 16})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Shutdown(context.Background()) })
			g, key := MustOpenHotPathWith(b, func(cfg *gateway.Config) { cfg.Tracer = p.Tracer() })
			req := proxiedRequest(key)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				serveOnce(b, g, w, req)
			}
			b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
