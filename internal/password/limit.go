package password

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"

	"github.com/gatehouse/gatehouse"
)

// ErrBusy is returned by a Hasher when every hashing slot stayed taken for
// the whole queue wait (or the queue was full). It is an EUNAVAILABLE
// *gatehouse.Error (503) whose RetryAfter tells the client when to come
// back; it says nothing about whether the password was right.
var ErrBusy error = &busyError{}

type busyError struct{}

func (*busyError) Error() string { return errBusy.Error() }
func (*busyError) Unwrap() error { return errBusy }

// RetryAfter is how long the client should wait before retrying.
func (*busyError) RetryAfter() time.Duration { return time.Second }

var errBusy = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "too many sign-ins are being checked at once; retry shortly")

// HasherConfig bounds the memory and CPU that argon2id may take at once.
type HasherConfig struct {
	// MemoryBudget is the most memory, in bytes, that hashes in progress
	// may use together (each weighs its m parameter). 0: GOMAXPROCS hashes
	// of DefaultParams (19 MiB each). A single hash larger than the budget
	// still runs, alone.
	MemoryBudget int64
	// QueueWait is how long a hash waits for memory before ErrBusy.
	// 0: 2 s.
	QueueWait time.Duration
	// MaxQueue is how many hashes may wait at once; more fail at once with
	// ErrBusy. 0: 64 per GOMAXPROCS.
	MaxQueue int
}

// Hasher runs Hash and Verify under a memory budget, so that a flood of
// sign-ins (with random usernames, each verified against a dummy hash)
// costs the process at most the budget instead of 19 MiB per concurrent
// attempt. Every argon2id computation of a server should go through one
// Hasher. It is safe for concurrent use.
type Hasher struct {
	sem     *semaphore.Weighted
	budget  int64 // in KiB
	wait    time.Duration
	max     int64
	waiting atomic.Int64
	peak    atomic.Int64 // most KiB held at once (for tests and metrics)
	held    atomic.Int64
}

// NewHasher returns a Hasher with cfg's bounds.
func NewHasher(cfg HasherConfig) *Hasher {
	procs := int64(max(runtime.GOMAXPROCS(0), 1))
	budget := cfg.MemoryBudget / 1024
	if budget <= 0 {
		budget = procs * int64(DefaultParams().MemoryKiB)
	}
	h := &Hasher{budget: budget, wait: cfg.QueueWait, max: int64(cfg.MaxQueue)}
	if h.wait <= 0 {
		h.wait = 2 * time.Second
	}
	if h.max <= 0 {
		h.max = 64 * procs
	}
	h.sem = semaphore.NewWeighted(budget)
	return h
}

// MemoryBudget returns the budget in bytes.
func (h *Hasher) MemoryBudget() int64 { return h.budget * 1024 }

// PeakMemory returns the most argon2id memory, in bytes, held at once so far.
func (h *Hasher) PeakMemory() int64 { return h.peak.Load() * 1024 }

// Hash is the package's Hash under the budget; it fails with ErrBusy when
// no memory came free within the queue wait, or ctx's error.
func (h *Hasher) Hash(ctx context.Context, pw string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	release, err := h.acquire(ctx, p.MemoryKiB)
	if err != nil {
		return "", err
	}
	defer release()
	return Hash(pw, p)
}

// Verify is the package's Verify under the budget; it fails with ErrBusy
// when no memory came free within the queue wait, or with ctx's error. A
// malformed hash fails at once without waiting.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string, current Params) (ok, rehash bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx, p.MemoryKiB)
	if err != nil {
		return false, false, err
	}
	defer release()
	return verifyDecoded(pw, p, salt, key, current)
}

func verifyDecoded(pw string, p Params, salt, key []byte, current Params) (bool, bool, error) {
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p != current, nil
}

// acquire takes kib of the budget (all of it when kib is larger).
func (h *Hasher) acquire(ctx context.Context, kib uint32) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("password hash: %w", err) // the caller has gone
	}
	w := min(int64(kib), h.budget)
	if !h.sem.TryAcquire(w) {
		if h.waiting.Add(1) > h.max {
			h.waiting.Add(-1)
			return nil, ErrBusy
		}
		wctx, cancel := context.WithTimeout(ctx, h.wait)
		err := h.sem.Acquire(wctx, w)
		cancel()
		h.waiting.Add(-1)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("password hash: %w", ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, ErrBusy
			}
			return nil, fmt.Errorf("password hash: %w", err)
		}
	}
	held := h.held.Add(int64(kib))
	for {
		pk := h.peak.Load()
		if held <= pk || h.peak.CompareAndSwap(pk, held) {
			break
		}
	}
	return func() {
		h.held.Add(-int64(kib))
		h.sem.Release(w)
	}, nil
}
