package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
	"github.com/gatehouse/gatehouse/internal/totp"
)

type pepperVersionOut struct {
	Version     int        `json:"version"`
	CreatedAt   *time.Time `json:"created_at"`
	Credentials int        `json:"credentials"`
}

type pepperStatusOut struct {
	Name           string             `json:"name"`
	Version        int                `json:"version"`
	CreatedAt      *time.Time         `json:"created_at"`
	AgeSeconds     *int64             `json:"age_seconds"`
	CadenceSeconds int64              `json:"cadence_seconds"`
	Rotatable      bool               `json:"rotatable"`
	Where          string             `json:"where"`
	PepperVersions []pepperVersionOut `json:"pepper_versions"`
}

// pepperStatus is the pepper's entry of GET /v1/secrets at admin.
func pepperStatus(t *testing.T, client *http.Client, admin string) pepperStatusOut {
	t.Helper()
	var list struct {
		Secrets []pepperStatusOut `json:"secrets"`
	}
	getJSON(t, client, "GET", admin+"/v1/secrets", &list)
	for _, s := range list.Secrets {
		if s.Name == secrets.Pepper {
			return s
		}
	}
	t.Fatal("no pepper in the secrets status")
	return pepperStatusOut{}
}

// getJSON sends an admin request with the admin token and decodes a 2xx
// answer into out.
func getJSON(t *testing.T, client *http.Client, method, url string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return res.StatusCode
}

// sealedReplica is one gatehouse on the PostgreSQL database dsn with the
// generated secrets sealed under masterKey, and a data dir of its own:
// nothing is shared with another replica but the database and the key.
type sealedReplica struct {
	app         *app.App
	base, admin string
	clock       *gatehouse.FakeClock
	dataDir     string
	client      *http.Client
	logs        *syncBuffer
}

func startSealedReplica(t *testing.T, dsn, masterKey, upstream string) *sealedReplica {
	t.Helper()
	r := &sealedReplica{dataDir: t.TempDir(), clock: gatehouse.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), client: &http.Client{Timeout: 10 * time.Second}, logs: &syncBuffer{}}
	cfg, err := config.Parse("replica.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n%sroutes:\n  - {name: r, path: /api/v1/signals/, upstream: %s, scopes: [read:signals]}\n",
		r.dataDir, replicaStore(dsn), upstream)))
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case "GATEHOUSE_ADMIN_TOKEN":
			return adminToken
		case secrets.MasterKeyEnv:
			return masterKey
		}
		return ""
	}
	a, err := app.New(context.Background(), cfg, app.Options{Getenv: getenv, Logger: slog.New(slog.NewJSONHandler(r.logs, nil)), Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	r.app, r.base, r.admin = a, "http://"+a.Addr(), "http://"+a.AdminAddr()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return r
}

func (r *sealedReplica) createKey(t *testing.T) keyOut {
	t.Helper()
	body := strings.NewReader(`{"name":"k","scopes":["read:signals"]}`)
	req, _ := http.NewRequest("POST", r.admin+"/v1/keys", body)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var k keyOut
	if res.StatusCode != 201 || json.NewDecoder(res.Body).Decode(&k) != nil {
		t.Fatalf("create key: HTTP %d", res.StatusCode)
	}
	return k
}

func (r *sealedReplica) get(t *testing.T, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+"/api/v1/signals/x", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func hashVersion(t *testing.T, st store.Store, id string) uint64 {
	t.Helper()
	k, err := st.GetKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := authn.DecodeHash(k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPepperRotation: two replicas on one PostgreSQL database with only
// the master key in common. A key made before the rotation works after
// it on both; one made on A after the rotation on A hashes under the new
// version and works at once on B, which has not polled yet (its
// verification reads the new version); status shows the newest version's
// age and the credentials per version; rotating a key re-hashes it under
// the newest; the rotation is audited without a value.
func TestPepperRotation(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	up := newUpstream(t)
	mk := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	a := startSealedReplica(t, dsn, mk, up.URL)
	b := startSealedReplica(t, dsn, mk, up.URL)
	st := a.app.Store()

	old := a.createKey(t)
	if v := hashVersion(t, st, old.ID); v != 1 {
		t.Fatalf("key before rotation under version %d", v)
	}
	before := pepperStatus(t, a.client, a.admin)
	if before.Version != 1 || !before.Rotatable || len(before.PepperVersions) != 1 {
		t.Fatalf("status before: %+v", before)
	}

	a.clock.Advance(48 * time.Hour)
	var out struct {
		Before pepperStatusOut `json:"before"`
		After  pepperStatusOut `json:"after"`
	}
	if code := getJSON(t, a.client, "POST", a.admin+"/v1/secrets/pepper/rotate", &out); code != 200 {
		t.Fatalf("rotate: HTTP %d", code)
	}
	if out.Before.Version != 1 || out.After.Version != 2 || out.After.AgeSeconds == nil || *out.After.AgeSeconds != 0 ||
		out.After.CreatedAt == nil || !out.After.CreatedAt.Equal(a.clock.Now()) || out.After.CadenceSeconds != 365*86400 {
		t.Fatalf("rotate answered %+v", out)
	}

	fresh := a.createKey(t)
	if v := hashVersion(t, st, fresh.ID); v != 2 {
		t.Fatalf("key after rotation under version %d, want 2", v)
	}
	// B: stale (polls every 10s), verifies the new key at once.
	for _, r := range []*sealedReplica{a, b} {
		for _, k := range []keyOut{old, fresh} {
			if code := r.get(t, k.Key); code != 200 {
				t.Fatalf("%s with key %s: HTTP %d", r.base, k.ID, code)
			}
		}
	}
	// A key made on B, now that it read version 2, is under it too.
	if v := hashVersion(t, st, b.createKey(t).ID); v != 2 {
		t.Fatalf("key made on B after its refresh under version %d", v)
	}

	s := pepperStatus(t, b.client, b.admin)
	if s.Version != 2 || len(s.PepperVersions) != 2 || s.PepperVersions[0].Credentials != 2 || s.PepperVersions[1].Credentials != 2 {
		// version 1: the old key and the admin token; version 2: the two new keys.
		t.Fatalf("status on B: %+v", s)
	}
	// Rotating the old key re-hashes it under version 2.
	var rot keyOut
	if code := getJSON(t, a.client, "POST", a.admin+"/v1/keys/"+old.ID+"/rotate", &rot); code != 201 {
		t.Fatalf("rotate key: HTTP %d", code)
	}
	if v := hashVersion(t, st, rot.ID); v != 2 {
		t.Fatalf("rotated key under version %d", v)
	}
	if code := b.get(t, rot.Key); code != 200 {
		t.Fatalf("rotated key on B: HTTP %d", code)
	}

	// Audited as a secret rotation, without a value.
	var page struct {
		Entries []map[string]any `json:"entries"`
	}
	// In PostgreSQL an event is listed once the sequencer has placed it,
	// which a loaded machine can delay past the rotation's answer.
	found := false
	for deadline := time.Now().Add(15 * time.Second); !found && time.Now().Before(deadline); {
		getJSON(t, a.client, "GET", a.admin+"/v1/audit?limit=1000&type=admin.secret.rotate", &page)
		for _, e := range page.Entries {
			if s := toJSON(e); strings.Contains(s, "admin.secret.rotate") && strings.Contains(s, "secret:pepper") {
				found = true
			}
		}
		if !found {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !found {
		t.Fatalf("no admin.secret.rotate event for the pepper: %v", page.Entries)
	}
	for _, l := range []string{toJSON(page.Entries), a.logs.String(), b.logs.String(), toJSON(out)} {
		if strings.Contains(l, `"versions":[{`) || strings.Contains(l, `"value":"`) {
			t.Fatal("a pepper value in an event, a log or an answer")
		}
	}

	// A second rotation on B: A follows (on demand at the first key
	// under it), and keeps verifying every older key.
	if code := getJSON(t, b.client, "POST", b.admin+"/v1/secrets/pepper/rotate", &out); code != 200 || out.After.Version != 3 {
		t.Fatalf("rotate on B: HTTP %d %+v", code, out.After)
	}
	third := b.createKey(t)
	for _, k := range []keyOut{fresh, rot, third} {
		if code := a.get(t, k.Key); code != 200 {
			t.Fatalf("A with key %s after B's rotation: HTTP %d", k.ID, code)
		}
	}
}

// TestPepperRotationWhileServing rotates the pepper of a running gateway
// (file secrets) while requests with a key made before flow, then sends
// requests with a key made after, also across a restart: zero failed
// requests.
func TestPepperRotationWhileServing(t *testing.T) {
	h := MustStart(t)
	old := h.createKey(map[string]any{"name": "old", "scopes": []string{"read:signals"}})

	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var keyMu sync.Mutex
	keysInUse := []string{old.Key}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				keyMu.Lock()
				k := keysInUse[n%len(keysInUse)]
				keyMu.Unlock()
				res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k)
				res.Body.Close()
				if res.StatusCode != 200 {
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	waitRequests := func(n int64) {
		for start := done.Load(); done.Load() < start+n; {
			time.Sleep(time.Millisecond)
		}
	}
	waitRequests(50)
	// adminCall and createKey swap h.client: not while requests flow.
	auth := "Authorization: Bearer " + adminToken
	var out struct {
		After pepperStatusOut `json:"after"`
	}
	if err := json.Unmarshal(h.expect(200, "POST", h.admin+"/v1/secrets/pepper/rotate", nil, auth), &out); err != nil || out.After.Version != 2 {
		t.Fatalf("rotate: %v %+v", err, out)
	}
	var fresh keyOut
	if err := json.Unmarshal(h.expect(201, "POST", h.admin+"/v1/keys", map[string]any{"name": "new", "scopes": []string{"read:signals"}}, auth, "Content-Type: application/json"), &fresh); err != nil {
		t.Fatal(err)
	}
	keyMu.Lock()
	keysInUse = append(keysInUse, fresh.Key)
	keyMu.Unlock()
	waitRequests(100)
	if err := json.Unmarshal(h.expect(200, "POST", h.admin+"/v1/secrets/pepper/rotate", nil, auth), &out); err != nil || out.After.Version != 3 {
		t.Fatalf("second rotate: %v %+v", err, out)
	}
	waitRequests(100)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation", failed.Load(), done.Load())
	}
	if v := hashVersion(t, h.app.Store(), fresh.ID); v != 2 {
		t.Fatalf("key made after the first rotation under version %d", v)
	}

	// The versions live in the data dir's pepper-versions file (0600),
	// which a restart reads.
	path := filepath.Join(h.dataDir, secrets.PepperVersions)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pepper-versions file: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(path)
	set, err := secrets.ParsePepperSet(raw)
	if err != nil || len(set.Versions) != 3 {
		t.Fatalf("pepper-versions: %d versions, %v", len(set.Versions), err)
	}
	h.restart()
	for _, k := range []keyOut{old, fresh} {
		if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key); res.StatusCode != 200 {
			t.Fatalf("key %s after a restart: HTTP %d", k.ID, res.StatusCode)
		}
	}
	third := h.createKey(map[string]any{"name": "third", "scopes": []string{"read:signals"}})
	if v := hashVersion(t, h.app.Store(), third.ID); v != 3 {
		t.Fatalf("key made after a restart under version %d, want 3", v)
	}
	// No value in the log or the audit log.
	logs := h.logs.String() + toJSON(h.auditEvents("admin.secret.rotate"))
	for _, v := range set.Versions {
		if strings.Contains(logs, base64.StdEncoding.EncodeToString(v.Value)) {
			t.Fatalf("pepper version %d in the log or an audit event", v.Version)
		}
	}
	t.Logf("%d requests during two rotations, none failed", done.Load())
}

// TestPepperHashAbuseGateway: keys whose stored hash names an unknown
// pepper version, is truncated or garbage, or has an overflowing varint
// are refused with 401 and a JSON error, never a 5xx; the log names the
// key, not the hash.
func TestPepperHashAbuseGateway(t *testing.T) {
	h := MustStart(t)
	st := h.app.Store()
	mac := make([]byte, 32)
	for _, tt := range []struct {
		name string
		hash []byte
	}{
		{"unknown version", authn.EncodeHash(9, mac)},
		{"truncated", authn.EncodeHash(2, mac)[:10]},
		{"garbage", []byte(strings.Repeat("x", 40))},
		{"varint overflow", append([]byte{0xf1}, []byte(strings.Repeat("\xff", 12)+strings.Repeat("\x00", 32))...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, id, err := authn.NewToken(authn.PrefixAPIKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateKey(context.Background(), &store.Key{ID: authn.KeyIDPrefix + id, Name: tt.name, Hash: tt.hash, Scopes: []string{"read:signals"}, CreatedAt: h.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok)
			defer res.Body.Close()
			if res.StatusCode != 401 {
				t.Fatalf("HTTP %d, want 401", res.StatusCode)
			}
			decodeError(t, res)
			if !strings.Contains(h.logs.String(), authn.KeyIDPrefix+id) {
				t.Fatal("the malformed hash is not logged with its key id")
			}
		})
	}
	// The status counts them as of no known version, and does not fail.
	var list struct {
		Secrets []pepperStatusOut `json:"secrets"`
	}
	if code := h.adminCall("GET", "/v1/secrets", nil, &list); code != 200 {
		t.Fatalf("status: HTTP %d", code)
	}
	for _, s := range list.Secrets {
		if s.Name == secrets.Pepper && !strings.Contains(s.Where, "unknown version 4") {
			t.Fatalf("pepper status: %+v", s)
		}
	}
}

// TestPepperRotationTOTP: a second factor enrolled before a pepper
// rotation still signs in after it; one enrolled after is sealed under
// the new version and signs in too, also after a restart.
func TestPepperRotationTOTP(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.createUser("bob", "admin")
	aliceSecret := h.newPerson().enrolTOTP("alice")
	if code := h.adminCall("POST", "/v1/secrets/pepper/rotate", nil, nil); code != 200 {
		t.Fatalf("rotate: HTTP %d", code)
	}
	bobSecret := h.newPerson().enrolTOTP("bob")
	u, err := h.app.Store().GetUser(context.Background(), "bob")
	if err != nil || len(u.TOTPSecret) < 2 || u.TOTPSecret[0] != 0xf1 || u.TOTPSecret[1] != 2 {
		t.Fatalf("bob's TOTP secret is not sealed under pepper version 2: %v", err)
	}
	signIn := func(user, secret string) {
		t.Helper()
		h.clock.Advance(30 * time.Second)
		code, _ := totp.Code(secret, h.clock.Now())
		if c, e := h.newPerson().login(user, alicePW, map[string]any{"totp_code": code}); c != 200 {
			t.Fatalf("%s signs in with a code: %d %s", user, c, e.Error.Message)
		}
	}
	signIn("alice", aliceSecret)
	signIn("bob", bobSecret)
	h.restart()
	signIn("alice", aliceSecret)
	signIn("bob", bobSecret)
}
