package password_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
)

// TestHasherBudget: however many verifications run at once, the argon2id
// memory held together never passes the budget, and those that find no
// room within the queue wait fail with ErrBusy (503, with a retry hint).
func TestHasherBudget(t *testing.T) {
	p := password.DefaultParams()
	enc, err := password.Hash("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		cfg           password.HasherConfig
		wantBusy      bool
		wantMaxHashes int64
	}{
		{"two hashes, long wait", password.HasherConfig{MemoryBudget: 2 * 19 << 20, QueueWait: time.Minute}, false, 2},
		{"one hash, no queue", password.HasherConfig{MemoryBudget: 19 << 20, QueueWait: time.Minute, MaxQueue: 1}, true, 1},
		{"one hash, 1ms wait", password.HasherConfig{MemoryBudget: 19 << 20, QueueWait: time.Millisecond}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := password.NewHasher(tc.cfg)
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, busy := 0, 0
			for i := 0; i < 12; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					good, _, err := h.Verify(context.Background(), "correct horse", enc, p)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, password.ErrBusy):
						busy++
						if gatehouse.HTTPStatus(gatehouse.ErrorCode(err)) != http.StatusServiceUnavailable {
							t.Errorf("ErrBusy is HTTP %d", gatehouse.HTTPStatus(gatehouse.ErrorCode(err)))
						}
						var ra interface{ RetryAfter() time.Duration }
						if !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
							t.Errorf("ErrBusy carries no retry hint")
						}
					case err != nil:
						t.Errorf("Verify: %v", err)
					case good:
						ok++
					default:
						t.Errorf("right password refused")
					}
				}()
			}
			wg.Wait()
			if peak := h.PeakMemory(); peak > tc.wantMaxHashes*int64(p.MemoryKiB)<<10 || peak > h.MemoryBudget() {
				t.Errorf("peak argon2id memory %d MiB, budget %d MiB", peak>>20, h.MemoryBudget()>>20)
			}
			if tc.wantBusy != (busy > 0) {
				t.Errorf("busy refusals = %d, want some: %v (ok %d)", busy, tc.wantBusy, ok)
			}
			if ok == 0 {
				t.Errorf("no verification succeeded")
			}
		})
	}
}

// TestHasherCanceled: a caller that has given up gets its
// context's error, not ErrBusy and not a verdict on the password.
func TestHasherCanceled(t *testing.T) {
	p := password.DefaultParams()
	enc, _ := password.Hash("pw-pw-pw-pw", p)
	h := password.NewHasher(password.HasherConfig{MemoryBudget: 19 << 20, QueueWait: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := h.Verify(ctx, "pw-pw-pw-pw", enc, p); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Verify: %v, want context.Canceled", err)
	}
	if _, _, err := h.Verify(context.Background(), "x", "$argon2id$v=19$m=1,t=1,p=1$AA$AA", p); !errors.Is(err, password.ErrMalformedHash) {
		t.Errorf("malformed hash: %v", err)
	}
}

// TestPolicyHistoryThroughHasher: the history comparisons of a password
// change go through the Hasher (and so share its budget): a caller that
// has gone gets its context's error from CheckWith instead of a hash made
// outside the budget, and with room the history rule still holds.
func TestPolicyHistoryThroughHasher(t *testing.T) {
	p := password.DefaultParams()
	old, _ := password.Hash("an old passphrase here", p)
	pol := password.Policy{MinLength: 8, History: 3}
	h := password.NewHasher(password.HasherConfig{})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pol.CheckWith(gone, h, "a new passphrase here", "alice", []string{old}); !errors.Is(err, context.Canceled) {
		t.Errorf("history check for a caller that has gone: %v, want context.Canceled", err)
	}
	if err := pol.CheckWith(context.Background(), h, "an old passphrase here", "alice", []string{old}); err == nil || errors.Is(err, password.ErrBusy) {
		t.Errorf("a reused password: %v, want the history refusal", err)
	}
	if err := pol.CheckWith(context.Background(), h, "a new passphrase here", "alice", []string{old}); err != nil {
		t.Errorf("a new password: %v", err)
	}
}
