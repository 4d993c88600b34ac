// Package vaulttest is an in-process HTTP server speaking the parts of the
// HashiCorp Vault (and OpenBao) HTTP API that Gatehouse uses, as
// documented: the KV version 2 secrets engine (data with versions and
// check-and-set, metadata, soft delete, undelete, destroy), AppRole and
// Kubernetes login, response-wrapped secret-ids (sys/wrapping/unwrap),
// token/lookup-self and token/renew-self, and namespaces
// (X-Vault-Namespace). No Vault server can be installed on the machines
// this project builds on, so tests drive this server through the official
// client (github.com/hashicorp/vault/api) instead; a test against a real
// server runs when GATEHOUSE_TEST_VAULT_ADDR is set.
package vaulttest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a running test Vault. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's address, for api.Config.Address.
	URL  string
	http *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	mount     string
	tokens    map[string]*token
	roles     map[string]*role // AppRole, by role_id
	k8s       map[string]string
	wrapped   map[string]string // wrapping token → secret_id
	kv        map[string]*entry // by namespace + "\x00" + path
	deny      []string          // KV paths (prefixes) no token may reach
	tokenTTL  time.Duration
	requests  []Request
	renewals  int
	logins    int
	lastToken string
}

// Request is one request the server received, as recorded for tests.
type Request struct {
	Method, Path, Namespace string
	// HadToken reports whether the request carried X-Vault-Token.
	HadToken bool
}

type token struct {
	id, accessor, namespace, path string
	created, expires              time.Time
	ttl                           time.Duration
	renewable, revoked            bool
}

type role struct {
	name      string
	secretIDs map[string]bool
}

type version struct {
	data      map[string]any
	created   time.Time
	deleted   time.Time
	destroyed bool
}

type entry struct {
	versions    map[int]*version
	current     int
	created     time.Time
	updated     time.Time
	casRequired bool
	maxVersions int
}

// Config configures New.
type Config struct {
	// Mount is where KV v2 is mounted (default "secret").
	Mount string
	// TokenTTL is the lease of tokens logins issue (default 1h).
	TokenTTL time.Duration
	// Now is the server's clock (default time.Now).
	Now func() time.Time
}

// New starts a server; it stops when Close is called.
func New(cfg Config) *Server {
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		now: cfg.Now, mount: cfg.Mount, tokenTTL: cfg.TokenTTL,
		tokens: map[string]*token{}, roles: map[string]*role{}, k8s: map[string]string{},
		wrapped: map[string]string{}, kv: map[string]*entry{},
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.http.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.http.Close() }

func randomID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// RootToken issues a renewable token valid in namespace ns ("" for the
// root namespace), as `vault token create` would.
func (s *Server) RootToken(ns string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(ns, "auth/token/create").id
}

func (s *Server) issueLocked(ns, path string) *token {
	now := s.now()
	t := &token{id: randomID("hvs."), accessor: randomID(""), namespace: ns, path: path,
		created: now, expires: now.Add(s.tokenTTL), ttl: s.tokenTTL, renewable: true}
	s.tokens[t.id] = t
	s.lastToken = t.id
	return t
}

// AddAppRole creates an AppRole named name and returns its role_id and a
// secret_id.
func (s *Server) AddAppRole(name string) (roleID, secretID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	roleID, secretID = randomID("role-"), randomID("sid-")
	s.roles[roleID] = &role{name: name, secretIDs: map[string]bool{secretID: true}}
	return roleID, secretID
}

// NewSecretID adds a secret_id to the AppRole roleID.
func (s *Server) NewSecretID(roleID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := randomID("sid-")
	s.roles[roleID].secretIDs[id] = true
	return id
}

// RevokeSecretID removes a secret_id: logins with it fail.
func (s *Server) RevokeSecretID(roleID, secretID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.roles[roleID].secretIDs, secretID)
}

// WrapSecretID returns a single-use wrapping token whose unwrapped
// response holds a new secret_id of roleID, as
// `vault write -wrap-ttl=… -f auth/approle/role/NAME/secret-id` does.
func (s *Server) WrapSecretID(roleID string) string {
	id := s.NewSecretID(roleID)
	s.mu.Lock()
	defer s.mu.Unlock()
	wt := randomID("hvs.wrap.")
	s.wrapped[wt] = id
	return wt
}

// AddKubernetesRole lets logins to role name with service-account token
// jwt succeed.
func (s *Server) AddKubernetesRole(name, jwt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.k8s[name] = jwt
}

// ExpireTokens makes every token issued so far expired, as if its TTL had
// passed: requests with them get 403 permission denied.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// Deny makes KV paths starting with prefix (relative to the mount, e.g.
// "gatehouse/pepper") forbidden to every token.
func (s *Server) Deny(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = append(s.deny, prefix)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Logins and Renewals count successful logins and token renewals.
func (s *Server) Logins() int   { s.mu.Lock(); defer s.mu.Unlock(); return s.logins }
func (s *Server) Renewals() int { s.mu.Lock(); defer s.mu.Unlock(); return s.renewals }

// Tokens returns every token issued, for tests that look for them where
// they must not be (logs, errors).
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.tokens {
		out = append(out, id)
	}
	for wt := range s.wrapped {
		out = append(out, wt)
	}
	return out
}

// Write stores data as the next version of a KV path in namespace ns,
// as an operator's `vault kv put` would.
func (s *Server) Write(ns, path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(ns, path, data)
}

func (s *Server) putLocked(ns, path string, data map[string]any) int {
	now := s.now()
	e := s.kv[ns+"\x00"+path]
	if e == nil {
		e = &entry{versions: map[int]*version{}, created: now}
		s.kv[ns+"\x00"+path] = e
	}
	e.current++
	e.updated = now
	e.versions[e.current] = &version{data: data, created: now}
	if e.maxVersions > 0 {
		for v := range e.versions {
			if v <= e.current-e.maxVersions {
				delete(e.versions, v)
			}
		}
	}
	return e.current
}

type apiError struct {
	code int
	msgs []string
}

func fail(code int, msgs ...string) *apiError { return &apiError{code, msgs} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/")
	tok := r.Header.Get("X-Vault-Token")
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	method := r.Method
	if method == http.MethodGet && r.URL.Query().Get("list") == "true" {
		method = "LIST"
	}
	var body map[string]any
	if r.Body != nil && (method == http.MethodPost || method == http.MethodPut) {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err.Error() != "EOF" {
			writeJSON(w, 400, map[string]any{"errors": []string{"failed to parse JSON input: " + err.Error()}})
			return
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: method, Path: path, Namespace: ns, HadToken: tok != ""})
	code, resp, apiErr := s.route(method, path, ns, tok, body, r.URL.Query())
	s.mu.Unlock()
	if apiErr != nil {
		if apiErr.msgs == nil {
			apiErr.msgs = []string{}
		}
		writeJSON(w, apiErr.code, map[string]any{"errors": apiErr.msgs})
		return
	}
	if resp == nil {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// authed returns the token tok if it is valid in namespace ns.
func (s *Server) authed(tok, ns string) (*token, *apiError) {
	t := s.tokens[tok]
	if t == nil || t.revoked || !s.now().Before(t.expires) || t.namespace != ns {
		return nil, fail(403, "permission denied")
	}
	return t, nil
}

func (s *Server) route(method, path, ns, tok string, body map[string]any, q map[string][]string) (int, any, *apiError) {
	switch {
	case path == "sys/wrapping/unwrap" && (method == http.MethodPut || method == http.MethodPost):
		wt := tok
		if b, ok := body["token"].(string); ok && b != "" {
			wt = b
		}
		id, ok := s.wrapped[wt]
		if !ok {
			return 0, nil, fail(400, "wrapping token is not valid or does not exist")
		}
		delete(s.wrapped, wt) // single use
		return 200, map[string]any{"request_id": randomID(""), "data": map[string]any{"secret_id": id, "secret_id_accessor": randomID(""), "secret_id_ttl": 0}}, nil
	case strings.HasPrefix(path, "auth/") && strings.HasSuffix(path, "/login") && (method == http.MethodPut || method == http.MethodPost):
		return s.login(strings.TrimSuffix(strings.TrimPrefix(path, "auth/"), "/login"), ns, body)
	case path == "auth/token/lookup-self" && method == http.MethodGet:
		t, err := s.authed(tok, ns)
		if err != nil {
			return 0, nil, err
		}
		return 200, map[string]any{"data": map[string]any{
			"accessor": t.accessor, "creation_time": t.created.Unix(), "creation_ttl": int(t.ttl.Seconds()), "display_name": "approle",
			"entity_id": "", "expire_time": t.expires.UTC().Format(time.RFC3339Nano), "explicit_max_ttl": 0, "id": t.id,
			"issue_time": t.created.UTC().Format(time.RFC3339Nano), "meta": nil, "num_uses": 0, "orphan": true, "path": t.path,
			"policies": []string{"default", "gatehouse"}, "renewable": t.renewable, "ttl": int(t.expires.Sub(s.now()).Seconds()), "type": "service",
		}}, nil
	case path == "auth/token/renew-self" && (method == http.MethodPut || method == http.MethodPost):
		t, err := s.authed(tok, ns)
		if err != nil {
			return 0, nil, err
		}
		inc := s.tokenTTL
		if v, ok := body["increment"].(float64); ok && v > 0 && time.Duration(v)*time.Second < inc {
			inc = time.Duration(v) * time.Second
		}
		t.expires = s.now().Add(inc)
		s.renewals++
		return 200, map[string]any{"auth": s.authBody(t, inc)}, nil
	case strings.HasPrefix(path, s.mount+"/"):
		t, err := s.authed(tok, ns)
		if err != nil {
			return 0, nil, err
		}
		_ = t
		op, rest, _ := strings.Cut(strings.TrimPrefix(path, s.mount+"/"), "/")
		for _, d := range s.deny {
			if strings.HasPrefix(rest, d) {
				return 0, nil, fail(403, "1 error occurred:\n\t* permission denied\n\n")
			}
		}
		return s.kvOp(method, op, rest, ns, body, q)
	}
	return 0, nil, fail(404, "no handler for route \""+path+"\". route entry not found.")
}

func (s *Server) authBody(t *token, lease time.Duration) map[string]any {
	return map[string]any{
		"client_token": t.id, "accessor": t.accessor, "policies": []string{"default", "gatehouse"},
		"token_policies": []string{"default", "gatehouse"}, "metadata": map[string]string{},
		"lease_duration": int(lease.Seconds()), "renewable": t.renewable, "entity_id": "", "token_type": "service", "orphan": true,
	}
}

func (s *Server) login(mount, ns string, body map[string]any) (int, any, *apiError) {
	str := func(k string) string { v, _ := body[k].(string); return v }
	switch mount {
	case "approle":
		r := s.roles[str("role_id")]
		if r == nil || !r.secretIDs[str("secret_id")] {
			return 0, nil, fail(400, "invalid role or secret ID")
		}
	case "kubernetes":
		jwt, ok := s.k8s[str("role")]
		if !ok || jwt != str("jwt") {
			return 0, nil, fail(403, "permission denied")
		}
	default:
		return 0, nil, fail(404, "no handler for route \"auth/"+mount+"/login\". route entry not found.")
	}
	s.logins++
	t := s.issueLocked(ns, "auth/"+mount+"/login")
	return 200, map[string]any{"request_id": randomID(""), "auth": s.authBody(t, s.tokenTTL)}, nil
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func versionMeta(v int, ver *version) map[string]any {
	return map[string]any{"created_time": ts(ver.created), "custom_metadata": nil, "deletion_time": ts(ver.deleted), "destroyed": ver.destroyed, "version": v}
}

func (s *Server) kvOp(method, op, path, ns string, body map[string]any, q map[string][]string) (int, any, *apiError) {
	key := ns + "\x00" + path
	e := s.kv[key]
	versions := func() []int {
		var out []int
		if vs, ok := body["versions"].([]any); ok {
			for _, v := range vs {
				if f, ok := v.(float64); ok {
					out = append(out, int(f))
				}
			}
		}
		return out
	}
	switch {
	case op == "data" && method == http.MethodGet:
		if e == nil {
			return 0, nil, fail(404)
		}
		v := e.current
		if qs := q["version"]; len(qs) > 0 && qs[0] != "0" {
			v, _ = strconv.Atoi(qs[0])
		}
		ver := e.versions[v]
		if ver == nil {
			return 0, nil, fail(404)
		}
		if !ver.deleted.IsZero() || ver.destroyed {
			// Documented: a deleted version reads as 404 with its metadata.
			return 404, map[string]any{"data": map[string]any{"data": nil, "metadata": versionMeta(v, ver)}}, nil
		}
		return 200, map[string]any{"request_id": randomID(""), "lease_duration": 0, "renewable": false,
			"data": map[string]any{"data": ver.data, "metadata": versionMeta(v, ver)}}, nil
	case op == "data" && (method == http.MethodPost || method == http.MethodPut):
		data, ok := body["data"].(map[string]any)
		if !ok {
			return 0, nil, fail(400, "no data provided")
		}
		current := 0
		if e != nil {
			current = e.current
		}
		opts, _ := body["options"].(map[string]any)
		cas, hasCAS := opts["cas"].(float64)
		if e != nil && e.casRequired && !hasCAS {
			return 0, nil, fail(400, "check-and-set parameter required for this call")
		}
		if hasCAS && int(cas) != current {
			return 0, nil, fail(400, "check-and-set parameter did not match the current version")
		}
		v := s.putLocked(ns, path, data)
		return 200, map[string]any{"data": versionMeta(v, s.kv[key].versions[v])}, nil
	case op == "data" && method == http.MethodDelete:
		if e != nil && e.versions[e.current] != nil {
			e.versions[e.current].deleted = s.now()
		}
		return 204, nil, nil
	case (op == "delete" || op == "undelete" || op == "destroy") && (method == http.MethodPost || method == http.MethodPut):
		if e == nil {
			return 204, nil, nil
		}
		for _, v := range versions() {
			ver := e.versions[v]
			if ver == nil {
				continue
			}
			switch op {
			case "delete":
				ver.deleted = s.now()
			case "undelete":
				if !ver.destroyed {
					ver.deleted = time.Time{}
				}
			case "destroy":
				ver.destroyed, ver.data = true, nil
			}
		}
		return 204, nil, nil
	case op == "metadata" && method == http.MethodGet:
		if e == nil {
			return 0, nil, fail(404)
		}
		vs := map[string]any{}
		oldest := 0
		for v, ver := range e.versions {
			vs[strconv.Itoa(v)] = map[string]any{"created_time": ts(ver.created), "deletion_time": ts(ver.deleted), "destroyed": ver.destroyed}
			if oldest == 0 || v < oldest {
				oldest = v
			}
		}
		return 200, map[string]any{"data": map[string]any{
			"cas_required": e.casRequired, "created_time": ts(e.created), "current_version": e.current, "custom_metadata": nil,
			"delete_version_after": "0s", "max_versions": e.maxVersions, "oldest_version": oldest, "updated_time": ts(e.updated), "versions": vs,
		}}, nil
	case op == "metadata" && (method == http.MethodPost || method == http.MethodPut):
		if e == nil {
			e = &entry{versions: map[int]*version{}, created: s.now(), updated: s.now()}
			s.kv[key] = e
		}
		if v, ok := body["cas_required"].(bool); ok {
			e.casRequired = v
		}
		if v, ok := body["max_versions"].(float64); ok {
			e.maxVersions = int(v)
		}
		return 204, nil, nil
	case op == "metadata" && method == http.MethodDelete:
		delete(s.kv, key)
		return 204, nil, nil
	case op == "metadata" && method == "LIST":
		prefix := ns + "\x00" + strings.TrimSuffix(path, "/") + "/"
		seen := map[string]bool{}
		for k := range s.kv {
			if rest, ok := strings.CutPrefix(k, prefix); ok {
				if i := strings.IndexByte(rest, '/'); i >= 0 {
					rest = rest[:i+1]
				}
				seen[rest] = true
			}
		}
		if len(seen) == 0 {
			return 0, nil, fail(404)
		}
		var keys []string
		for k := range seen {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return 200, map[string]any{"data": map[string]any{"keys": keys}}, nil
	}
	return 0, nil, fail(405, fmt.Sprintf("unsupported operation %s on %s", method, op))
}
