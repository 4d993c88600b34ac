package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// FillKeys stores n API keys straight into s, for benchmarks that need a
// deployment with many: key_bench00000000… named bench-0…, scope
// demo:read, one a minute up to now, one in ten revoked. Their hashes are
// random, so none of them authenticates a request.
func FillKeys(tb testing.TB, ctx context.Context, s store.Store, n int) {
	tb.Helper()
	start := time.Now().Add(-time.Duration(n) * time.Minute)
	for i := range n {
		k := &store.Key{ID: fmt.Sprintf("key_bench%08d", i), Name: fmt.Sprintf("bench-%d", i),
			Scopes: []string{"demo:read"}, CreatedAt: start.Add(time.Duration(i) * time.Minute)}
		k.Hash = []byte(rand.Text())
		if i%10 == 9 {
			k.RevokedAt = k.CreatedAt.Add(time.Second)
		}
		if err := s.CreateKey(ctx, k); err != nil {
			tb.Fatalf("create key %d: %v", i, err)
		}
	}
}
