package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Ref is a secret the config names by reference — the database or the
// Redis password — with the value now in use. Value and Password read it
// without I/O (a new database or Redis connection asks for it); Reload
// reads the provider again and swaps the value atomically when it has
// changed: a new Vault KV version (metadata current_version), a file
// rewritten (its modification time or content), never an environment
// variable (read at start). Ref is safe for concurrent use; its zero value
// is not usable: make one with NewRef.
type Ref struct {
	provider Provider
	name     string
	// what says what the secret is for, in errors: "store password".
	what  string
	clock func() time.Time
	cur   atomic.Pointer[refValue]
	// failed is the last Reload's error (nil when it succeeded); the
	// value in use stays the one last read.
	failed atomic.Pointer[refError]
}

type refValue struct {
	value    string
	secret   Secret // Value cleared: the value is in value
	loadedAt time.Time
}

type refError struct {
	err error
	at  time.Time
}

// RefStatus describes a Ref without its value: what `gatehouse secrets
// status` and /health/ready show.
type RefStatus struct {
	Name     string
	Provider string
	// What is what the secret is for ("store password").
	What    string
	Where   string
	Version int
	// Created is when the value in use was written, as the provider says
	// (zero when it cannot tell, as for env).
	Created time.Time
	// LoadedAt is when this process read the value in use.
	LoadedAt time.Time
	// Err is why the last reload failed (the value in use is the one
	// read before); nil when it succeeded.
	Err   error
	ErrAt time.Time
}

// NewRef reads secret name from p, for what ("store password", used in
// errors), and returns a Ref holding it. now reads the clock (nil:
// time.Now). The error names the secret and its provider, never a value;
// it wraps ErrNotFound when p holds no such secret.
func NewRef(ctx context.Context, p Provider, name, what string, now func() time.Time) (*Ref, error) {
	if now == nil {
		now = time.Now
	}
	r := &Ref{provider: p, name: name, what: what, clock: now}
	s, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	r.store(s)
	return r, nil
}

// Name is the secret's name.
func (r *Ref) Name() string { return r.name }

// Value is the secret's value now in use.
func (r *Ref) Value() string { return r.cur.Load().value }

// Password returns Value; it has the signature of a per-connection
// password source (pgauth.Password, go-redis's CredentialsProviderContext)
// and never fails: a failed reload keeps the value last read.
func (r *Ref) Password(context.Context) (string, error) { return r.Value(), nil }

// Status describes the Ref without its value.
func (r *Ref) Status() RefStatus {
	v := r.cur.Load()
	st := RefStatus{Name: r.name, Provider: r.provider.Name(), What: r.what, Where: v.secret.Where, Version: v.secret.Version,
		Created: v.secret.Created, LoadedAt: v.loadedAt}
	if f := r.failed.Load(); f != nil {
		st.Err, st.ErrAt = f.err, f.at
	}
	return st
}

// Reload reads the secret again when the provider says it may have
// changed, and swaps in a new value. It reports whether the value
// changed. On failure the value in use is kept, the error (naming the
// secret, never a value) is returned and shown by Status until a reload
// succeeds.
func (r *Ref) Reload(ctx context.Context) (changed bool, err error) {
	defer func() {
		if err != nil {
			r.failed.Store(&refError{err: err, at: r.clock()})
		} else {
			r.failed.Store(nil)
		}
	}()
	cur := r.cur.Load()
	if vr, ok := r.provider.(Versioner); ok {
		v, err := vr.CurrentVersion(ctx, r.name)
		if err != nil {
			return false, r.wrap(err)
		}
		if v == cur.secret.Version {
			return false, nil
		}
	}
	s, err := r.get(ctx)
	if err != nil {
		return false, err
	}
	if bytes.Equal(s.Value, []byte(cur.value)) && s.Version == cur.secret.Version {
		// The same value (a file touched, an environment variable):
		// only its metadata may have moved.
		if !s.Created.Equal(cur.secret.Created) || s.Where != cur.secret.Where {
			s.Value = nil
			r.cur.Store(&refValue{value: cur.value, secret: s, loadedAt: cur.loadedAt})
		}
		return false, nil
	}
	r.store(s)
	return true, nil
}

// Run calls Reload every interval until ctx ends; changed is called
// (with the status, never the value) after each change, failed after each
// failure. interval <= 0 returns at once.
func (r *Ref) Run(ctx context.Context, interval time.Duration, changed func(RefStatus), failed func(error)) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := r.Reload(ctx)
		switch {
		case err != nil && ctx.Err() == nil && failed != nil:
			failed(err)
		case ok && changed != nil:
			changed(r.Status())
		}
	}
}

func (r *Ref) get(ctx context.Context) (Secret, error) {
	s, err := r.provider.Get(ctx, r.name)
	if err != nil {
		return Secret{}, r.wrap(err)
	}
	if len(s.Value) == 0 {
		return Secret{}, fmt.Errorf("%s: secret %s (%s provider) is empty", r.what, r.name, r.provider.Name())
	}
	return s, nil
}

// wrap names the secret in err. Provider errors carry no value.
func (r *Ref) wrap(err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: secret %s not found in the %s provider: %w", r.what, r.name, r.provider.Name(), err)
	}
	return fmt.Errorf("%s: read secret %s from the %s provider: %w", r.what, r.name, r.provider.Name(), err)
}

func (r *Ref) store(s Secret) {
	v := &refValue{value: string(s.Value), secret: s, loadedAt: r.clock()}
	v.secret.Value = nil
	r.cur.Store(v)
}
