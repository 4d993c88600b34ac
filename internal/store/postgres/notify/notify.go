// Package notify carries cache invalidations between Gatehouse replicas
// that share one PostgreSQL database, over LISTEN/NOTIFY. A Bus publishes
// with pg_notify on a small pool and listens on one dedicated connection,
// which it re-opens with backoff when it drops.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/pgauth"
)

// Channel is the PostgreSQL notification channel.
const Channel = "gatehouse_invalidate"

// ApplicationName is the application_name of the listening connection, by
// which operators (and tests) find it in pg_stat_activity.
const ApplicationName = "gatehouse-invalidation-listener"

// Defaults of Config.
const (
	DefaultPingInterval = 2 * time.Second
	DefaultMinBackoff   = 50 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
)

// Message is one invalidation: what changed (Kind) and which (ID).
type Message struct {
	Kind string
	ID   string
	// Sent is when the publishing replica sent it (by its clock; zero
	// from a replica that does not say), for the propagation delay.
	Sent time.Time
}

// payload is a Message on the wire, with the publishing instance.
type payload struct {
	From string `json:"from"`
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
	// At is when it was sent, unix nanoseconds.
	At int64 `json:"at,omitempty"`
}

// Config configures a Bus.
type Config struct {
	DSN string // as for postgres.Open
	// Password, when set, gives every new connection its password in
	// place of the DSN's (a secret reference that follows rotations).
	Password pgauth.Password
	// Receive is called, on the listener's goroutine, for every message
	// published by another Bus. Required.
	Receive func(ctx context.Context, m Message)
	// Connected is called when the listener starts listening (at first and
	// after every reconnect): messages may have been missed before it.
	Connected func(ctx context.Context)
	// Disconnected is called when the listening connection is lost.
	Disconnected func()
	Logger       *slog.Logger
	// PingInterval is how often an idle listening connection is checked;
	// zero means DefaultPingInterval.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts;
	// zero means the defaults.
	MinBackoff, MaxBackoff time.Duration
}

// Bus publishes and receives invalidations. Publish is safe for concurrent
// use; Run listens until its context ends.
type Bus struct {
	cfg       Config
	id        string
	pool      *pgxpool.Pool
	log       *slog.Logger
	connected atomic.Bool

	mu      sync.Mutex
	lastErr error
	pid     uint32 // backend pid of the listening connection, 0 if none
}

// Open returns a Bus on the database named by cfg.DSN. It does not listen
// until Run.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.Receive == nil {
		return nil, errors.New("notify: Config.Receive is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	pc, err := pgauth.ParsePool(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("open invalidation bus: %w", err)
	}
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open invalidation bus: %w", err)
	}
	var b [8]byte
	rand.Read(b[:])
	return &Bus{cfg: cfg, id: hex.EncodeToString(b[:]), pool: pool, log: cfg.Logger.WithGroup("invalidation"),
		lastErr: errors.New("not listening yet")}, nil
}

// Close releases the publishing pool. Run must have returned (or never
// been called).
func (b *Bus) Close() { b.pool.Close() }

// Publish sends m to every other Bus listening on the database.
func (b *Bus) Publish(ctx context.Context, m Message) error {
	raw, err := json.Marshal(payload{From: b.id, Kind: m.Kind, ID: m.ID, At: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	if _, err := b.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, string(raw)); err != nil {
		return fmt.Errorf("publish invalidation: %w", err)
	}
	return nil
}

// Healthy returns nil while the bus is listening, else why not.
func (b *Bus) Healthy() error {
	if b.connected.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Errorf("not listening for invalidations (caches re-validate every few seconds): %w", b.lastErr)
}

// ListenerPID returns the backend pid of the listening connection, or 0.
func (b *Bus) ListenerPID() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pid
}

// Run listens until ctx ends, calling Receive for other replicas'
// messages and reconnecting with exponential backoff when the connection
// drops. It returns when ctx ends.
func (b *Bus) Run(ctx context.Context) {
	backoff := b.cfg.MinBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := b.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		b.mu.Lock()
		b.lastErr, b.pid = err, 0
		b.mu.Unlock()
		if b.connected.Swap(false) {
			b.log.Warn("invalidation listener disconnected; caches fall back to short revalidation", "err", err)
			if b.cfg.Disconnected != nil {
				b.cfg.Disconnected()
			}
		} else {
			b.log.Debug("invalidation listener connect failed", "err", err)
		}
		if time.Since(started) > b.cfg.MaxBackoff {
			backoff = b.cfg.MinBackoff // it ran for a while: start over
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, b.cfg.MaxBackoff)
	}
}

// listen opens the listening connection and serves it until it fails.
func (b *Bus) listen(ctx context.Context) error {
	cc, err := pgauth.ParseConn(ctx, b.cfg.DSN, b.cfg.Password)
	if err != nil {
		return err
	}
	cc.RuntimeParams["application_name"] = ApplicationName
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cc)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b.mu.Lock()
	b.lastErr, b.pid = nil, conn.PgConn().PID()
	b.mu.Unlock()
	b.connected.Store(true)
	b.log.Info("listening for invalidations from other replicas")
	if b.cfg.Connected != nil {
		b.cfg.Connected(ctx)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, b.cfg.PingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			b.deliver(ctx, n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle: check that the connection still answers, since a
			// silently dead one would never deliver again.
			pctx, cancel := context.WithTimeout(ctx, b.cfg.PingInterval)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func (b *Bus) deliver(ctx context.Context, raw string) {
	var p payload
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		b.log.Warn("ignoring malformed invalidation", "err", err)
		return
	}
	if p.From == b.id {
		return
	}
	m := Message{Kind: p.Kind, ID: p.ID}
	if p.At > 0 {
		m.Sent = time.Unix(0, p.At)
	}
	b.cfg.Receive(ctx, m)
}
