package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/postgres/notify"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// recorder collects what a Bus reports.
type recorder struct {
	mu                      sync.Mutex
	msgs                    []notify.Message
	connected, disconnected int
}

func (r *recorder) config(dsn string) notify.Config {
	return notify.Config{
		DSN: dsn,
		Receive: func(_ context.Context, m notify.Message) {
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
		},
		Connected:    func(context.Context) { r.mu.Lock(); r.connected++; r.mu.Unlock() },
		Disconnected: func() { r.mu.Lock(); r.disconnected++; r.mu.Unlock() },
		PingInterval: 100 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   50 * time.Millisecond,
	}
}

func (r *recorder) state() (msgs []notify.Message, connected, disconnected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Message(nil), r.msgs...), r.connected, r.disconnected
}

// eventually polls cond every millisecond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// MustRunBus opens a Bus and runs it until the test ends.
func MustRunBus(t *testing.T, cfg notify.Config) *notify.Bus {
	t.Helper()
	b, err := notify.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	return b
}

func TestBus(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	p, proxied := pgtest.MustProxy(t, dsn)
	var ra, rb recorder
	a := MustRunBus(t, ra.config(dsn))
	b := MustRunBus(t, rb.config(proxied))
	eventually(t, "both listening", func() bool { return a.Healthy() == nil && b.Healthy() == nil })
	ctx := context.Background()

	t.Run("delivered to others, not to itself", func(t *testing.T) {
		if err := a.Publish(ctx, notify.Message{Kind: "key", ID: "key_1"}); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		eventually(t, "B receives", func() bool { m, _, _ := rb.state(); return len(m) == 1 })
		m, _, _ := rb.state()
		if got := m[0]; got.Kind != "key" || got.ID != "key_1" {
			t.Fatalf("B received %+v", m)
		}
		// It says when it was sent, for the propagation delay.
		if at := m[0].Sent; at.Before(sent.Add(-time.Second)) || at.After(time.Now()) {
			t.Fatalf("sent at %v, published at about %v", at, sent)
		}
		time.Sleep(50 * time.Millisecond)
		if m, _, _ := ra.state(); len(m) != 0 {
			t.Fatalf("A received its own message: %+v", m)
		}
	})

	t.Run("disconnected until the connection is back", func(t *testing.T) {
		p.Cut()
		eventually(t, "B disconnected", func() bool { _, _, d := rb.state(); return d == 1 })
		if b.Healthy() == nil || b.ListenerPID() != 0 {
			t.Fatal("B reports healthy while cut off")
		}
		time.Sleep(200 * time.Millisecond) // several failed reconnects
		if _, c, d := rb.state(); c != 1 || d != 1 || b.Healthy() == nil {
			t.Fatalf("while cut: connected %d, disconnected %d, healthy %v", c, d, b.Healthy())
		}
		p.Restore()
		eventually(t, "B reconnected", func() bool { _, c, _ := rb.state(); return c == 2 && b.Healthy() == nil })
		if err := a.Publish(ctx, notify.Message{Kind: "user", ID: "alice"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B receives after reconnecting", func() bool { m, _, _ := rb.state(); return len(m) == 2 })
	})

	t.Run("reconnects after its backend is terminated", func(t *testing.T) {
		admin := pgtest.MustConnectAdmin(t)
		defer admin.Close(ctx)
		pid := a.ListenerPID()
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		eventually(t, "A reconnected", func() bool { return a.Healthy() == nil && a.ListenerPID() != pid })
		if _, c, d := ra.state(); c != 2 || d != 1 {
			t.Fatalf("A: connected %d, disconnected %d", c, d)
		}
		if err := b.Publish(ctx, notify.Message{Kind: "settings"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "A receives", func() bool { m, _, _ := ra.state(); return len(m) == 1 })
	})
}
