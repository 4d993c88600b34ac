package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// pepperState is the pepper's versions as this process last read or
// wrote them, and where they live. Values never leave the process but
// into the secret store and backups.
type pepperState struct {
	set secrets.PepperSet
	// secret is the pepper-versions secret as read (its provider
	// version for check-and-set), zero when there is none yet: the
	// pepper secret alone is version 1.
	secret   secrets.Secret
	stored   bool
	provider string
	where    string
}

// loadPepper reads the pepper's versions: the pepper-versions secret when
// there is one (the configured provider's when it is read-only and holds
// one, else the store of generated secrets', imported from the data dir
// after a restore), else the pepper secret as version 1. Version 1 of
// the set must be the pepper secret.
func (s *Secrets) loadPepper(ctx context.Context, pepper secrets.Secret, readOnly bool) error {
	base, err := decodePepper(pepper.Value)
	if err != nil {
		return err
	}
	s.Pepper = base
	l, _ := s.loaded(secrets.Pepper)
	st := &pepperState{provider: l.Provider, where: l.Where,
		set: secrets.PepperSet{Versions: []secrets.PepperVersion{{Version: 1, CreatedAt: pepper.Created, Value: base}}}}
	sec, err := s.ensure(ctx, secrets.PepperVersions, readOnly, nil)
	switch {
	case errors.Is(err, secrets.ErrNotFound):
		s.Loaded = slices.DeleteFunc(s.Loaded, func(l LoadedSecret) bool { return l.Name == secrets.PepperVersions })
	case err != nil:
		return err
	default:
		set, err := secrets.ParsePepperSet(sec.Value)
		if err != nil {
			return err
		}
		if err := checkPepperBase(set, base); err != nil {
			return err
		}
		l, _ := s.loaded(secrets.PepperVersions)
		st = &pepperState{set: set, secret: sec, stored: true, provider: l.Provider, where: sec.Where}
	}
	p, err := authn.NewPepper(pepperKeys(st.set)...)
	if err != nil {
		return fmt.Errorf("secret %s: %w", secrets.PepperVersions, err)
	}
	s.Peppers = p
	s.pepper.Store(st)
	return nil
}

// checkPepperBase refuses a set whose version 1 is not the pepper secret:
// every credential hashed before the first rotation would fail.
func checkPepperBase(set secrets.PepperSet, base []byte) error {
	v1, ok := set.Get(1)
	if !ok {
		return nil // version 1 retired
	}
	if subtle.ConstantTimeCompare(v1.Value, base) != 1 {
		return fmt.Errorf("secret %s: version 1 is not the %s secret; restore the pepper that made the stored credentials (docs/secrets.md, Pepper versions)", secrets.PepperVersions, secrets.Pepper)
	}
	return nil
}

func pepperKeys(set secrets.PepperSet) []authn.PepperKey {
	keys := make([]authn.PepperKey, len(set.Versions))
	for i, v := range set.Versions {
		keys[i] = authn.PepperKey{Version: uint64(v.Version), Key: v.Value} // #nosec G115 -- versions are checked positive
	}
	return keys
}

// pepperRotatable reports whether the pepper lives where Gatehouse
// writes its generated secrets (not an operator's env or dotenv).
func (s *Secrets) pepperRotatable() bool {
	st := s.pepper.Load()
	return st != nil && s.Generated != nil && st.provider == s.Generated.Name()
}

// PepperRotation is what rotating the pepper did, without a value.
type PepperRotation struct {
	From, To int
	// Versions are the versions kept, oldest first.
	Versions []int
}

// rotatePepper adds a new pepper version and stores the set
// (check-and-set on the version read): new credentials hash under it at
// once here, and on other replicas when they read it (their poll, or at
// the first credential naming it). Older versions are kept: credentials
// hashed under them verify until rotated.
func (a *App) rotatePepper(ctx context.Context) (PepperRotation, error) {
	a.pepperMu.Lock()
	defer a.pepperMu.Unlock()
	var rot PepperRotation
	s := a.secrets
	st := s.pepper.Load()
	if st == nil || !s.pepperRotatable() {
		return rot, gatehouse.Errorf(gatehouse.ECONFLICT, "the pepper comes from the %s provider, which Gatehouse does not write: add a version to %s there and restart (docs/secrets.md, Pepper versions)", a.pepperProvider(), secrets.PepperVersions)
	}
	next, err := st.set.Rotate(a.clock.Now(), nil)
	if err != nil {
		return rot, err
	}
	cas := 0
	if st.stored {
		cas = st.secret.Version
	}
	sec, err := s.Generated.Put(ctx, secrets.PepperVersions, next.Marshal(), cas)
	if errors.Is(err, secrets.ErrConflict) {
		if rerr := a.reloadPepperLocked(ctx); rerr != nil {
			a.log.Warn("pepper: cannot read the versions after a conflict", "err", rerr)
		}
		return rot, gatehouse.Errorf(gatehouse.ECONFLICT, "the pepper was rotated elsewhere meanwhile; this replica has read it: gatehouse secrets status shows it")
	}
	if err != nil {
		return rot, fmt.Errorf("store the new pepper version: %w", err)
	}
	if err := s.Peppers.Set(pepperKeys(next)...); err != nil {
		return rot, err
	}
	s.pepper.Store(&pepperState{set: next, secret: sec, stored: true, provider: st.provider, where: sec.Where})
	rot.From, rot.To = st.set.Newest().Version, next.Newest().Version
	for _, v := range next.Versions {
		rot.Versions = append(rot.Versions, v.Version)
	}
	a.log.Info("pepper rotated: new credentials hash under the new version", "from", rot.From, "to", rot.To, "kept", rot.Versions)
	return rot, nil
}

func (a *App) pepperProvider() string {
	if st := a.secrets.pepper.Load(); st != nil {
		return st.provider
	}
	return "unknown"
}

// reloadPepper reads the pepper's versions anew when they live in the
// store of generated secrets: the poll, and a credential whose hash names
// a version newer than any held (another replica rotated).
func (a *App) reloadPepper(ctx context.Context) error {
	a.pepperMu.Lock()
	defer a.pepperMu.Unlock()
	return a.reloadPepperLocked(ctx)
}

func (a *App) reloadPepperLocked(ctx context.Context) error {
	s := a.secrets
	st := s.pepper.Load()
	if !s.pepperRotatable() {
		return nil
	}
	sec, err := s.Generated.Get(ctx, secrets.PepperVersions)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read secret %s: %w", secrets.PepperVersions, err)
	}
	if st.stored && sec.Version == st.secret.Version {
		return nil
	}
	set, err := secrets.ParsePepperSet(sec.Value)
	if err != nil {
		return fmt.Errorf("version %d: %w", sec.Version, err)
	}
	if err := checkPepperBase(set, s.Pepper); err != nil {
		return err
	}
	// A set that drops a version held is refused: credentials hashed
	// under it would stop working.
	for _, v := range st.set.Versions {
		if _, ok := set.Get(v.Version); !ok {
			return fmt.Errorf("secret %s version %d drops pepper version %d, still held here: kept the versions held", secrets.PepperVersions, sec.Version, v.Version)
		}
	}
	if err := s.Peppers.Set(pepperKeys(set)...); err != nil {
		return err
	}
	s.pepper.Store(&pepperState{set: set, secret: sec, stored: true, provider: st.provider, where: sec.Where})
	if set.Newest().Version != st.set.Newest().Version {
		a.log.Info("pepper: read a new version made elsewhere", "from", st.set.Newest().Version, "to", set.Newest().Version)
	}
	return nil
}

// runPepperWatch follows rotations of the pepper made by another replica
// (sealed store or Vault): every reloadEvery it asks the secret's
// version, and on a new one reads the set and swaps it in. A credential
// naming a newer version asks at once (Pepper's refresh).
func (a *App) runPepperWatch(ctx context.Context) {
	if !a.secrets.pepperRotatable() {
		return
	}
	a.secrets.Peppers.SetRefresh(a.reloadPepper)
	every := a.secrets.reloadEvery(a.cfg)
	v, ok := a.secrets.Generated.(secrets.Versioner)
	if every <= 0 || !ok {
		return
	}
	a.every(ctx, every, "pepper: cannot read a new version", func(ctx context.Context) error {
		cur, err := v.CurrentVersion(ctx, secrets.PepperVersions)
		if err != nil {
			return err
		}
		if st := a.secrets.pepper.Load(); cur == 0 || (st.stored && cur == st.secret.Version) {
			return nil
		}
		return a.reloadPepper(ctx)
	})
}

// pepperStatus is the pepper's status entry: the newest version's age
// and, per version kept, how many active credentials still hash under it.
func (a *App) pepperStatus(ctx context.Context) (secrets.Status, error) {
	st := a.secrets.pepper.Load()
	counts, err := a.pepperCounts(ctx)
	if err != nil {
		return secrets.Status{}, err
	}
	newest := st.set.Newest()
	out := secrets.Status{Name: secrets.Pepper, Class: secrets.ClassPepper, Provider: st.provider, Version: newest.Version,
		Rotatable: a.secrets.pepperRotatable(),
		Rotate:    "gatehouse secrets rotate pepper: new credentials hash under a new version; existing ones verify under theirs until rotated (docs/secrets.md, Pepper versions)"}
	if !out.Rotatable {
		out.Rotate = "add a version to " + secrets.PepperVersions + " in " + st.provider + " (docs/secrets.md, Pepper versions) and restart"
	}
	var parts []string
	unknown := 0
	for v, n := range counts {
		if _, ok := st.set.Get(v); !ok {
			unknown += n
		}
	}
	for _, v := range st.set.Versions {
		vs := secrets.PepperVersionStatus{Version: v.Version, Credentials: counts[v.Version]}
		if !v.CreatedAt.IsZero() {
			c := v.CreatedAt.UTC()
			vs.CreatedAt = &c
		}
		out.PepperVersions = append(out.PepperVersions, vs)
		parts = append(parts, fmt.Sprintf("v%d %d", v.Version, vs.Credentials))
	}
	if unknown > 0 {
		parts = append(parts, fmt.Sprintf("unknown version %d (log: stored credential hash cannot be checked)", unknown))
	}
	out.Where = st.where
	if len(st.set.Versions) > 1 || unknown > 0 {
		out.Where += fmt.Sprintf("; active credentials per pepper version: %s", strings.Join(parts, ", "))
	}
	created := newest.CreatedAt
	if newest.Version == 1 {
		if l, ok := a.secrets.loaded(secrets.Pepper); ok {
			created = l.Secret.Created
		}
	}
	out.Age(created, a.cadence(out.Class), a.clock.Now())
	return out, nil
}

// pepperCounts counts the active credentials (API keys, client secrets,
// personal access tokens, the admin token) by the pepper version their
// stored hash names; 0 counts hashes that do not decode.
func (a *App) pepperCounts(ctx context.Context) (map[int]int, error) {
	now := a.clock.Now()
	counts := map[int]int{}
	add := func(h []byte) {
		v, _, err := authn.DecodeHash(h)
		if err != nil {
			v = 0
		}
		counts[int(v)]++ // #nosec G115 -- v is at most authn.MaxPepperVersion
	}
	keys, err := a.keys.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now)) {
			add(k.Hash)
		}
	}
	clients, err := a.clients.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	for _, c := range clients {
		if clientActive(c, now) {
			add(c.SecretHash)
		}
	}
	pats, err := a.pats.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	for _, p := range pats {
		if p.RevokedAt.IsZero() && p.ExpiresAt.After(now) {
			add(p.Hash)
		}
	}
	h, err := a.adminToken.Hash(ctx)
	if err != nil {
		return nil, err
	}
	if h != nil {
		add(h)
	}
	return counts, nil
}
