// Package lockdown is the incident containment that shuts the gateway: while
// a lockdown is in force only the principals and roles it names pass; every
// other caller is refused with 503 and a JSON reason naming the incident.
// The state is kept in the store, so it survives restarts and is shared by
// every replica; a replica that changes it tells the others (Reload).
package lockdown

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// SettingName is the store setting that holds the lockdown state.
const SettingName = "incident.lockdown"

// Principal kinds an allow entry may name ("kind:id").
var principalKinds = []string{string(gatehouse.KindAPIKey), string(gatehouse.KindClient), string(gatehouse.KindPAT), string(gatehouse.KindUser)}

// Roles an allow entry may name.
var roles = []string{"admin", "security", "auditor"}

// MaxAllow bounds the allow list.
const MaxAllow = 100

// State is a lockdown: the incident that called it, who and when, and the
// allow list. The zero State is no lockdown.
type State struct {
	Incident string    `json:"incident"`
	Allow    []string  `json:"allow"`
	By       string    `json:"by"`
	Since    time.Time `json:"since"`
}

// Active reports whether s is a lockdown in force.
func (s State) Active() bool { return s.Incident != "" }

// Settings is where the state is kept (store.Store provides it).
type Settings interface {
	GetSetting(ctx context.Context, name string) ([]byte, error)
	PutSetting(ctx context.Context, name string, value []byte) error
}

// ParseEntry checks one allow entry: a role (admin, security, auditor) or
// a principal "kind:id" with kind api_key, client, pat or user. It returns
// the entry's kind ("role" or the principal kind) and id.
func ParseEntry(e string) (kind, id string, err error) {
	if slices.Contains(roles, e) {
		return "role", e, nil
	}
	if k, v, ok := strings.Cut(e, ":"); ok {
		if k == "role" && slices.Contains(roles, v) {
			return "role", v, nil
		}
		if slices.Contains(principalKinds, k) && v != "" && len(v) <= 200 && !strings.ContainsAny(v, " \t\r\n\x00,") {
			return k, v, nil
		}
	}
	return "", "", gatehouse.Errorf(gatehouse.EINVALID,
		"allow %q: must be a role (admin, security, auditor) or a principal api_key:ID, client:ID, pat:ID or user:NAME", e)
}

// compiled is a State ready for the request path.
type compiled struct {
	state State
	err   error
	roles map[string]bool
	// principals holds "kind:id" of api keys, clients and users, and
	// "pat:ID" of tokens.
	principals map[string]bool
}

func compile(s State) *compiled {
	c := &compiled{state: s, roles: map[string]bool{}, principals: map[string]bool{}}
	for _, e := range s.Allow {
		kind, id, err := ParseEntry(e)
		if err != nil {
			continue // stored entries were checked when set
		}
		if kind == "role" {
			c.roles[id] = true
		} else {
			c.principals[kind+":"+id] = true
		}
	}
	c.err = &gatehouse.Error{Code: gatehouse.ELOCKDOWN,
		Message: fmt.Sprintf("the gateway is in lockdown for incident %s: only principals named by the incident responders are admitted", s.Incident)}
	return c
}

// admits reports whether p passes the lockdown c.
func (c *compiled) admits(p *gatehouse.Principal) bool {
	if p == nil {
		return false
	}
	if c.roles[p.Role] && p.Role != "" {
		return true
	}
	if c.roles["admin"] && slices.Contains(p.Scopes, gatehouse.ScopeAdmin) {
		return true
	}
	switch p.Kind {
	case gatehouse.KindPAT:
		// A token's principal is its owner (ID) and the token (Name).
		return c.principals["pat:"+p.Name] || c.principals["user:"+p.ID]
	case gatehouse.KindAPIKey, gatehouse.KindClient, gatehouse.KindUser:
		return c.principals[string(p.Kind)+":"+p.ID]
	}
	return false
}

// Lockdown holds the lockdown state of this process, read from and written
// to the store. It is safe for concurrent use; Check costs one atomic load
// while no lockdown is in force.
type Lockdown struct {
	st  Settings
	cur atomic.Pointer[compiled] // nil: no lockdown
	mu  sync.Mutex               // serialises Set, Lift and Reload
}

// New returns the lockdown kept in st. Call Reload to read the state.
func New(st Settings) *Lockdown { return &Lockdown{st: st} }

// Check returns nil when p may pass, otherwise the ELOCKDOWN error (503)
// naming the incident. A nil p (anonymous) passes only when no lockdown is
// in force.
func (l *Lockdown) Check(p *gatehouse.Principal) error {
	c := l.cur.Load()
	if c == nil || c.admits(p) {
		return nil
	}
	return c.err
}

// Current returns the lockdown in force (the zero State if none).
func (l *Lockdown) Current() State {
	if c := l.cur.Load(); c != nil {
		return c.state
	}
	return State{}
}

func (l *Lockdown) read(ctx context.Context) (State, error) {
	b, err := l.st.GetSetting(ctx, SettingName)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read lockdown state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("decode lockdown state: %w", err)
	}
	return s, nil
}

func (l *Lockdown) write(ctx context.Context, s State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode lockdown state: %w", err)
	}
	if err := l.st.PutSetting(ctx, SettingName, b); err != nil {
		return fmt.Errorf("write lockdown state: %w", err)
	}
	return nil
}

func (l *Lockdown) apply(s State) {
	if !s.Active() {
		l.cur.Store(nil)
		return
	}
	l.cur.Store(compile(s))
}

// Reload reads the state from the store and applies it: at start, when
// another replica announces a change, and periodically in case an
// announcement was lost. A read that fails keeps the state in force.
func (l *Lockdown) Reload(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.read(ctx)
	if err != nil {
		return err
	}
	l.apply(s)
	return nil
}

// Set puts the gateway in lockdown for s.Incident, admitting s.Allow
// (entries checked with ParseEntry; at least one). A lockdown already in
// force for another incident is ECONFLICT; one for the same incident is
// replaced (its allow list changed). It returns the state set.
func (l *Lockdown) Set(ctx context.Context, s State) (State, error) {
	if s.Incident == "" {
		return State{}, gatehouse.Errorf(gatehouse.EINVALID, "incident: required")
	}
	if len(s.Allow) == 0 {
		return State{}, gatehouse.Errorf(gatehouse.EINVALID, "allow: name at least one role or principal that may pass (e.g. admin)")
	}
	if len(s.Allow) > MaxAllow {
		return State{}, gatehouse.Errorf(gatehouse.EINVALID, "allow: at most %d entries", MaxAllow)
	}
	for _, e := range s.Allow {
		if _, _, err := ParseEntry(e); err != nil {
			return State{}, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := l.read(ctx)
	if err != nil {
		return State{}, err
	}
	if cur.Active() && cur.Incident != s.Incident {
		return State{}, gatehouse.Errorf(gatehouse.ECONFLICT, "the gateway is in lockdown for incident %s already: lift it first (gatehouse incident lift %s)", cur.Incident, cur.Incident)
	}
	s.Allow = slices.Clone(s.Allow)
	slices.Sort(s.Allow)
	s.Allow = slices.Compact(s.Allow)
	if err := l.write(ctx, s); err != nil {
		return State{}, err
	}
	l.apply(s)
	return s, nil
}

// Lift ends the lockdown of incident. None in force, or one of another
// incident, is ECONFLICT. It returns the state lifted.
func (l *Lockdown) Lift(ctx context.Context, incident string) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := l.read(ctx)
	if err != nil {
		return State{}, err
	}
	switch {
	case !cur.Active():
		l.apply(cur)
		return State{}, gatehouse.Errorf(gatehouse.ECONFLICT, "the gateway is not in lockdown")
	case cur.Incident != incident:
		return State{}, gatehouse.Errorf(gatehouse.ECONFLICT, "the gateway is in lockdown for incident %s, not %s", cur.Incident, incident)
	}
	if err := l.write(ctx, State{}); err != nil {
		return State{}, err
	}
	l.apply(State{})
	return cur, nil
}
