package authn

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// TestClientLockoutStateBounded floods the lockout state with failures of
// distinct client ids from distinct addresses: it stays within
// maxFailureEntries, and a lockout already in force survives the flood
// (entries with no lockout are evicted first).
func TestClientLockoutStateBounded(t *testing.T) {
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c := &Clients{clock: clock, log: slog.New(slog.DiscardHandler), failures: map[string]*clientFailures{}}
	victim := fmt.Sprintf("%s%016d", ClientIDPrefix, 0)
	for i := 0; i < clientMaxFailures; i++ {
		c.fail(victim, "192.0.2.1")
	}
	if !c.locked(victim, "192.0.2.1", clock.Now()) {
		t.Fatal("pair not locked after the failure limit")
	}
	for i := 1; i <= maxFailureEntries; i++ { // two entries each: pair and address
		c.fail(fmt.Sprintf("%s%016d", ClientIDPrefix, i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if n := len(c.failures); n > maxFailureEntries {
			t.Fatalf("after %d failures the lockout state holds %d entries, more than %d", i, n, maxFailureEntries)
		}
	}
	if !c.locked(victim, "192.0.2.1", clock.Now()) {
		t.Error("a flood of other ids evicted a lockout in force")
	}
	if c.locked(victim, "192.0.2.2", clock.Now()) {
		t.Error("the client is locked from an address that never failed")
	}
}
