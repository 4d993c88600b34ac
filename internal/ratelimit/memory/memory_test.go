package memory_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
)

func TestContract(t *testing.T) {
	ratelimittest.Run(t, func(tb testing.TB, c gatehouse.Clock) ratelimit.Limiter {
		return memory.New(memory.Config{Clock: c})
	})
}
