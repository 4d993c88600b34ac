package main_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/secrets/vaulttest"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

func newMasterKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// sharedReplicas starts replica A on a fresh PostgreSQL database, makes an
// API key, a service client and a JWT through it, then starts replica B
// with a data dir of its own (nothing copied) and the same config and
// environment: the key, the JWT and the JWKS work on B, and the shared
// audit log verifies after both stop. It returns the DSN, the config
// and the environment for further checks.
func sharedReplicas(t *testing.T, storeExtra, secretsYAML string, env []string) (dsn, cfg string) {
	t.Helper()
	dsn = pgtest.MustCreateDatabase(t)
	// Replicas behind one load balancer share one issuer.
	cfg = fmt.Sprintf("store: {driver: postgres, dsn: %q%s}\nauth: {issuer: \"https://gatehouse.test\"}\n", dsn, storeExtra) + secretsYAML + demoRoute
	env = append(env, "GATEHOUSE_ADMIN_TOKEN=replica-admin-token-0123456789")
	dataA := filepath.Join(t.TempDir(), "a")
	a := startServerWith(t, serverOpts{config: cfg, dataDir: dataA, env: env})
	key := createKey(t, a, "shared")
	out, errOut, code := run(t, a.env(), "clients", "create", "--name", "svc", "--scopes", "demo:read", "--json")
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("create client on A: %d %s", code, errOut)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	res, err := http.PostForm(a.base+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no token from A: %d", res.StatusCode)
	}
	for _, name := range []string{"server.secret", "signing-keys.json", "audit/log.key"} {
		if _, err := os.Stat(filepath.Join(dataA, name)); err == nil {
			t.Errorf("A keeps %s in its data dir: generated secrets belong to the shared provider", name)
		}
	}

	b := startServerWith(t, serverOpts{config: cfg, dataDir: filepath.Join(t.TempDir(), "b"), env: env})
	call := func(s *server, header, value string) int {
		req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
		req.Header.Set(header, value)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, s := range []*server{a, b} {
		if got := call(s, "X-API-Key", key); got != 200 {
			t.Errorf("A's API key on %s: %d", s.base, got)
		}
		if got := call(s, "Authorization", "Bearer "+tok.AccessToken); got != 200 {
			t.Errorf("A's JWT on %s: %d", s.base, got)
		}
	}
	jwks := func(s *server) string {
		res, err := http.Get(s.base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	if ja, jb := jwks(a), jwks(b); ja != jb {
		t.Errorf("JWKS differ:\nA %s\nB %s", ja, jb)
	}
	// B's key made through B works on A: one pepper.
	if got := call(a, "X-API-Key", createKey(t, b, "from-b")); got != 200 {
		t.Errorf("B's API key on A: %d", got)
	}
	// A pepper rotation on A: a key made on A after it works on B at
	// once (B has not polled: it reads the new version at the key's
	// first use), and one made on B then is under the new version too.
	var rot struct {
		After struct {
			Version int `json:"version"`
		} `json:"after"`
	}
	if out, errOut, code := run(t, a.env(), "secrets", "rotate", "pepper", "--json"); code != 0 || json.Unmarshal([]byte(out), &rot) != nil || rot.After.Version != 2 {
		t.Fatalf("secrets rotate pepper on A: %d %s %s", code, out, errOut)
	}
	for _, k := range []string{key, createKey(t, a, "from-a-after-the-rotation")} {
		if got := call(b, "X-API-Key", k); got != 200 {
			t.Errorf("A's key on B after the pepper rotation: %d", got)
		}
	}
	if got := call(a, "X-API-Key", createKey(t, b, "from-b-after-the-rotation")); got != 200 {
		t.Errorf("B's key made after the pepper rotation on A: %d", got)
	}
	if st, _ := secretsStatus(t, b); st["pepper"].Version != 2 {
		t.Errorf("B's pepper after A's rotation: %+v", st["pepper"])
	}
	for _, s := range []*server{a, b} {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop", s.base)
		}
	}
	out, errOut, code = run(t, nil, "audit", "verify", "--store", dsn)
	if code != 0 {
		t.Fatalf("audit verify --store after both replicas: %d %s %s", code, out, errOut)
	}
	t.Logf("audit verify: %s", strings.TrimSpace(out))
	return dsn, cfg
}

// serveFails runs serve, which must exit at start, and returns its stderr.
func serveFails(t *testing.T, cfg string, env []string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"+cfg), 0o644)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", path)
	cmd.Env = append(append(os.Environ(), "GATEHOUSE_DATA_DIR="+filepath.Join(dir, "data")), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatal("serve kept running; it should have refused to start")
	}
	if err == nil {
		t.Fatalf("serve exited 0: %s", out)
	}
	return string(out)
}

// TestReplicasShareSecretsWithMasterKey: replica B starts on A's
// PostgreSQL with only GATEHOUSE_SECRET_MASTER_KEY; a replica with another
// master key refuses to start, saying so, and a tampered sealed row is
// refused.
func TestReplicasShareSecretsWithMasterKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers on PostgreSQL")
	}
	mk := newMasterKey()
	dsn, cfg := sharedReplicas(t, "", "", []string{"GATEHOUSE_SECRET_MASTER_KEY=" + mk})

	other := newMasterKey()
	out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + other})
	if !strings.Contains(out, "another master key") || !strings.Contains(out, "same master key") {
		t.Errorf("wrong master key: %s", out)
	}
	if strings.Contains(out, other) || strings.Contains(out, mk) {
		t.Errorf("a master key reached the output: %s", out)
	}
	if out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=not-a-key"}); !strings.Contains(out, "must be 32 random bytes in base64") {
		t.Errorf("malformed master key: %s", out)
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE gatehouse_secrets SET ciphertext = overlay(ciphertext placing '\x00'::bytea from 14 for 1) WHERE name = 'pepper'`); err != nil {
		t.Fatal(err)
	}
	if out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + mk}); !strings.Contains(out, "secret pepper version 1: sealed secret fails authentication: altered or corrupt") {
		t.Errorf("tampered row: %s", out)
	}
}

// TestReplicasShareSecretsWithVault: the same with only Vault (the
// in-process KV v2 server, AppRole login): B starts on A's PostgreSQL
// with the same secrets section and nothing copied. The database password
// reference is resolved through Vault too.
func TestReplicasShareSecretsWithVault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers on PostgreSQL")
	}
	v := vaulttest.New(vaulttest.Config{})
	defer v.Close()
	roleID, secretID := v.AddAppRole("gatehouse")
	sidFile := filepath.Join(t.TempDir(), "secret-id")
	os.WriteFile(sidFile, []byte(secretID), 0o600)
	// PostgreSQL here trusts local connections: the password is set into
	// the DSN and ignored, which is what this shows.
	v.Write("", "gatehouse/db-password", map[string]any{"value": "p@ss w'rd"})
	secretsYAML := fmt.Sprintf(`secrets:
  provider: vault
  vault: {address: %q, auth: approle, role_id: %q, secret_id_file: %q}
`, v.URL, roleID, sidFile)
	sharedReplicas(t, ", password_secret: db-password", secretsYAML, nil)
	got := map[string]bool{}
	for _, r := range v.Requests() {
		got[r.Path] = true
	}
	for _, path := range []string{"secret/data/gatehouse/pepper", "secret/data/gatehouse/signing-keys", "secret/data/gatehouse/audit-key", "secret/data/gatehouse/db-password", "auth/approle/login"} {
		if !got[path] {
			t.Errorf("no request to %s", path)
		}
	}
	if v.Logins() < 2 {
		t.Errorf("%d logins for two replicas", v.Logins())
	}
}

// TestDotenvProvider: serve reads its secrets from a .env file (mode 0600)
// and, in prod mode, warns that the file is for local development; a file
// group or others can read is refused at start, naming the fix; the
// pepper it holds is never in the output.
func TestDotenvProvider(t *testing.T) {
	ignore, err := os.ReadFile("../../.gitignore")
	if err != nil || !slices.Contains(strings.Split(string(ignore), "\n"), ".env") {
		t.Errorf(".env is not in .gitignore (%v)", err)
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, ".env")
	pepper := newMasterKey() // 32 random bytes in base64, as the pepper is given
	if err := os.WriteFile(envFile, []byte("GATEHOUSE_SECRET_PEPPER="+pepper+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("mode: prod\nsecrets: {provider: dotenv, dotenv: %q}\n", envFile) + demoRoute
	s := startServerWith(t, serverOpts{config: cfg, env: []string{"GATEHOUSE_ADMIN_TOKEN=dotenv-admin-token-0123456789"}})
	key := createKey(t, s, "dotenv")
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
	logs := s.logs.String()
	if !strings.Contains(logs, "secrets come from a .env file in prod mode") {
		t.Errorf("no prod-mode warning about the .env file:\n%s", logs)
	}
	if strings.Contains(logs, pepper) || strings.Contains(logs, key) {
		t.Errorf("a secret reached the log:\n%s", logs)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(envFile, mode)
		out := serveFails(t, cfg, nil)
		if !strings.Contains(out, "others can read its secrets") || !strings.Contains(out, "chmod 600 "+envFile) {
			t.Errorf("mode %v: %s", mode, out)
		}
		if strings.Contains(out, pepper) {
			t.Errorf("mode %v: the pepper reached the output: %s", mode, out)
		}
	}
}

type secretStatusJSON struct {
	Name           string     `json:"name"`
	Class          string     `json:"class"`
	Provider       string     `json:"provider"`
	Where          string     `json:"where"`
	Version        int        `json:"version"`
	AgeSeconds     *int64     `json:"age_seconds"`
	CadenceSeconds int64      `json:"cadence_seconds"`
	DueAt          *time.Time `json:"due_at"`
	Overdue        *bool      `json:"overdue"`
}

func secretsStatus(t *testing.T, s *server) (map[string]secretStatusJSON, string) {
	t.Helper()
	out, errOut, code := run(t, s.env(), "secrets", "status", "--json")
	var list []secretStatusJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("secrets status --json: exit %d %q %s", code, out, errOut)
	}
	m := map[string]secretStatusJSON{}
	for _, st := range list {
		if st.Name == "" || st.Class == "" || st.Provider == "" || st.CadenceSeconds <= 0 || st.Overdue == nil {
			t.Errorf("entry without a field of the contract: %+v", st)
		}
		m[st.Name] = st
	}
	return m, out
}

// TestSecretsCommands through the binary: secrets status lists the
// secrets (as a JSON list with --json, a table without) and no value;
// secrets rotate signing-keys rotates; an unknown name exits 1 with the
// server's 404, a secret rotated otherwise exits 1 saying how, a
// malformed name exits 2 without asking; nothing secret reaches the log.
func TestSecretsCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{config: demoRoute, dataDir: dataDir})
	key := createKey(t, s, "ci")
	st, raw := secretsStatus(t, s)
	for name, class := range map[string]string{"pepper": "pepper", "signing-keys": "signing_keys", "audit-key": "audit_key", "api-keys": "api_keys"} {
		if st[name].Class != class || st[name].Provider == "" || st[name].AgeSeconds == nil || st[name].DueAt == nil || *st[name].Overdue {
			t.Errorf("%s: %+v", name, st[name])
		}
	}
	if st["api-keys"].CadenceSeconds != 90*86400 || st["signing-keys"].CadenceSeconds != 180*86400 {
		t.Errorf("default cadences: api-keys %d, signing-keys %d", st["api-keys"].CadenceSeconds, st["signing-keys"].CadenceSeconds)
	}
	pepper, _ := os.ReadFile(filepath.Join(dataDir, "server.secret"))
	auditKey, _ := os.ReadFile(filepath.Join(dataDir, "audit", "log.key"))
	text, _, code := run(t, s.env(), "secrets", "status")
	if code != 0 || !strings.HasPrefix(text, "NAME ") || !strings.Contains(text, "signing-keys") || !strings.Contains(text, "180d") {
		t.Errorf("secrets status: %d\n%s", code, text)
	}
	for _, out := range []string{raw, text} {
		if len(pepper) != 32 || strings.Contains(out, string(pepper)) || strings.Contains(out, base64.StdEncoding.EncodeToString(pepper)) ||
			strings.Contains(out, strings.TrimSpace(string(auditKey))) || strings.Contains(out, key) || strings.Contains(out, "PRIVATE+KEY") {
			t.Errorf("a secret value in the status:\n%s", out)
		}
	}

	if _, errOut, code := run(t, s.env(), "settings", "set", "secret_rotation.api_keys=30d"); code != 0 {
		t.Fatalf("settings set secret_rotation.api_keys=30d: %d %s", code, errOut)
	}
	if st, _ := secretsStatus(t, s); st["api-keys"].CadenceSeconds != 30*86400 {
		t.Errorf("api-keys cadence after settings set: %d", st["api-keys"].CadenceSeconds)
	}
	out, errOut, code := run(t, s.env(), "secrets", "rotate", "signing-keys", "--json")
	if code != 0 || !strings.Contains(out, `"after"`) {
		t.Fatalf("secrets rotate signing-keys: %d %s %s", code, out, errOut)
	}
	out, errOut, code = run(t, s.env(), "secrets", "rotate", "pepper", "--json")
	var pep struct {
		After struct {
			Version        int `json:"version"`
			PepperVersions []struct {
				Version     int `json:"version"`
				Credentials int `json:"credentials"`
			} `json:"pepper_versions"`
		} `json:"after"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &pep) != nil || pep.After.Version != 2 || len(pep.After.PepperVersions) != 2 || pep.After.PepperVersions[0].Credentials == 0 {
		t.Fatalf("secrets rotate pepper: %d %s %s", code, out, errOut)
	}
	if pv, _ := os.ReadFile(filepath.Join(dataDir, "pepper-versions")); strings.Contains(out, string(pv)) || strings.Contains(out, base64.StdEncoding.EncodeToString(pepper)) {
		t.Error("a pepper value in the rotation's answer")
	}
	out, _, _ = run(t, s.env(), "signing-keys", "list", "--json")
	var keys struct{ Keys []struct{ Active bool } }
	if json.Unmarshal([]byte(out), &keys) != nil || len(keys.Keys) != 2 || keys.Keys[0].Active || !keys.Keys[1].Active {
		t.Errorf("signing keys after secrets rotate: %s", out)
	}

	for _, tc := range []struct {
		name string
		exit int
		want string
	}{
		{"nope", 1, `gatehouse: no secret "nope": gatehouse secrets status lists them`},
		{"api-keys", 1, "api-keys cannot be rotated by gatehouse secrets rotate: gatehouse keys rotate"},
		{"vault-token", 1, "this deployment has no vault-token to rotate (HTTP 409 conflict)"},
		{"Not/A/Name", 2, "gatehouse: invalid secret name"},
	} {
		_, errOut, code := run(t, s.env(), "secrets", "rotate", tc.name)
		if code != tc.exit || !strings.HasPrefix(errOut, "gatehouse: ") || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("secrets rotate %s: exit %d %q, want %d and %q", tc.name, code, errOut, tc.exit, tc.want)
		}
	}
	if _, errOut, code := run(t, s.env(), "secrets", "rotate", "nope", "--json"); code != 1 || !strings.Contains(errOut, `"status":404`) || !strings.Contains(errOut, `"code":"not_found"`) {
		t.Errorf("secrets rotate nope --json: %d %s", code, errOut)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
	out, errOut, code = run(t, nil, "audit", "export", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "admin.secret.rotate") {
		t.Fatalf("audit export: %d %s", code, errOut)
	}
	for _, where := range []string{s.logs.String(), out} {
		if strings.Contains(where, base64.StdEncoding.EncodeToString(pepper)) || strings.Contains(where, strings.TrimSpace(string(auditKey))) || strings.Contains(where, key) {
			t.Errorf("a secret value in the log or the audit export")
		}
	}
}

// TestSecretsStatusVault: with the vault provider (the in-process KV v2
// server, AppRole) the status names Vault paths and versions, the token
// and the secret-id file; rotating the signing keys writes the next KV
// version with check-and-set, and rotating vault-token logs in anew.
func TestSecretsStatusVault(t *testing.T) {
	v := vaulttest.New(vaulttest.Config{})
	defer v.Close()
	roleID, secretID := v.AddAppRole("gatehouse")
	sidFile := filepath.Join(t.TempDir(), "secret-id")
	os.WriteFile(sidFile, []byte(secretID), 0o600)
	cfg := fmt.Sprintf("secrets:\n  provider: vault\n  vault: {address: %q, auth: approle, role_id: %q, secret_id_file: %q}\n", v.URL, roleID, sidFile) + demoRoute
	s := startServerWith(t, serverOpts{config: cfg, env: []string{"GATEHOUSE_ADMIN_TOKEN=vault-admin-token-0123456789"}})
	st, raw := secretsStatus(t, s)
	if p := st["pepper"]; p.Provider != "vault" || p.Where != "vault secret/gatehouse/pepper" || p.Version != 1 {
		t.Errorf("pepper: %+v", p)
	}
	if k := st["signing-keys"]; k.Provider != "vault" || k.Where != "vault secret/gatehouse/signing-keys" || k.Version < 1 {
		t.Errorf("signing-keys: %+v", k)
	}
	if tok := st["vault-token"]; tok.Class != "vault_token" || tok.CadenceSeconds != 30*86400 || !strings.Contains(tok.Where, "approle auth") {
		t.Errorf("vault-token: %+v", tok)
	}
	if sid := st["approle-secret-id"]; sid.Class != "approle_secret_id" || !strings.Contains(sid.Where, sidFile) || sid.AgeSeconds == nil {
		t.Errorf("approle-secret-id: %+v", sid)
	}
	for _, tok := range v.Tokens() {
		if strings.Contains(raw, tok) {
			t.Errorf("a Vault token in the status")
		}
	}
	if strings.Contains(raw, secretID) {
		t.Error("the secret-id in the status")
	}

	logins := v.Logins()
	if out, errOut, code := run(t, s.env(), "secrets", "rotate", "vault-token"); code != 0 {
		t.Fatalf("rotate vault-token: %d %s %s", code, out, errOut)
	}
	if v.Logins() != logins+1 {
		t.Errorf("logins %d after rotating the token, want %d", v.Logins(), logins+1)
	}
	before := st["signing-keys"].Version
	if out, errOut, code := run(t, s.env(), "secrets", "rotate", "signing-keys"); code != 0 {
		t.Fatalf("rotate signing-keys: %d %s %s", code, out, errOut)
	}
	st, _ = secretsStatus(t, s)
	if st["signing-keys"].Version != before+1 {
		t.Errorf("signing-keys version %d after rotation, want %d", st["signing-keys"].Version, before+1)
	}
	// The new token works: status reads Vault through it.
	if st["vault-token"].AgeSeconds == nil || *st["vault-token"].AgeSeconds > 5 {
		t.Errorf("vault-token after rotation: %+v", st["vault-token"])
	}
	for _, tok := range v.Tokens() {
		if strings.Contains(s.logs.String(), tok) {
			t.Errorf("a Vault token in the log")
		}
	}
}

// TestRotationWhileServing: two replicas on one PostgreSQL with the master
// key; while clients take tokens from each replica and spend them on the
// other, the signing keys are rotated on A (twice, through secrets rotate)
// and on B (signing-keys rotate, on keys B may not have seen): no request
// fails, and both replicas end up publishing the same JWKS and signing
// with the same key.
func TestRotationWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers on PostgreSQL")
	}
	base := "auth: {issuer: \"https://gatehouse.test\"}\nratelimit: {default: {requests: 1000000, per: 1m}}\n" + demoRoute
	t.Run("sealed", func(t *testing.T) {
		dsn := pgtest.MustCreateDatabase(t)
		cfg := fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn) + base
		rotateWhileServing(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + newMasterKey()}, "sealed", 15*time.Second)
	})
	t.Run("vault", func(t *testing.T) {
		v := vaulttest.New(vaulttest.Config{})
		defer v.Close()
		dsn := pgtest.MustCreateDatabase(t)
		cfg := fmt.Sprintf("store: {driver: postgres, dsn: %q}\nsecrets:\n  provider: vault\n  vault: {address: %q, auth: token, poll: 1s}\n", dsn, v.URL) + base
		rotateWhileServing(t, cfg, []string{"VAULT_TOKEN=" + v.RootToken("")}, "vault", 5*time.Second)
	})
}

// rotateWhileServing is TestRotationWhileServing with one shared source
// of secrets (provider: sealed or vault), whose poll the replicas' JWKS
// must converge within.
func rotateWhileServing(t *testing.T, cfg string, env []string, provider string, converge time.Duration) {
	env = append(env, "GATEHOUSE_ADMIN_TOKEN=rotation-admin-token-0123456789")
	a := startServerWith(t, serverOpts{config: cfg, env: env})
	b := startServerWith(t, serverOpts{config: cfg, env: env})
	out, errOut, code := run(t, a.env(), "clients", "create", "--name", "svc", "--scopes", "demo:read", "--json")
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("create client: %d %s", code, errOut)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	exchange := func(from, to *server) error {
		res, err := http.PostForm(from.base+"/oauth/token", form)
		if err != nil {
			return err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("token from %s: %d", from.base, res.StatusCode)
		}
		req, _ := http.NewRequest("GET", to.base+"/demo/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("token of %s on %s: %d", from.base, to.base, res.StatusCode)
		}
		return nil
	}
	stop := make(chan struct{})
	type result struct {
		n    int
		errs []error
	}
	done := make(chan result)
	for _, pair := range [][2]*server{{a, b}, {b, a}} {
		go func() {
			var r result
			for {
				select {
				case <-stop:
					done <- r
					return
				default:
				}
				r.n++
				if err := exchange(pair[0], pair[1]); err != nil {
					r.errs = append(r.errs, err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	for _, step := range []struct {
		s    *server
		args []string
	}{
		{a, []string{"secrets", "rotate", "signing-keys"}},
		{a, []string{"secrets", "rotate", "signing-keys"}},
		{b, []string{"signing-keys", "rotate"}},
	} {
		if out, errOut, code := run(t, step.s.env(), step.args...); code != 0 {
			t.Fatalf("%v on %s: %d %s %s", step.args, step.s.base, code, out, errOut)
		}
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	total := 0
	for range 2 {
		r := <-done
		total += r.n
		for _, err := range r.errs {
			t.Error(err)
		}
	}
	t.Logf("%d token exchanges across the replicas during three rotations", total)
	if total < 10 {
		t.Errorf("only %d exchanges", total)
	}
	jwks := func(s *server) string {
		res, err := http.Get(s.base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	deadline := time.Now().Add(converge) // the sealed store is polled every 10 s, Vault every poll
	for jwks(a) != jwks(b) {
		if time.Now().After(deadline) {
			t.Fatalf("JWKS still differ after %s:\nA %s\nB %s", converge, jwks(a), jwks(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
	var keys struct{ Keys []struct{ KID string } }
	out, _, _ = run(t, a.env(), "signing-keys", "list", "--json")
	if json.Unmarshal([]byte(out), &keys) != nil || len(keys.Keys) != 4 {
		t.Errorf("signing keys after three rotations: %s", out)
	}
	// Both list the same shared secrets (sealed: naming the master key by its id).
	sa, _ := secretsStatus(t, a)
	sb, raw := secretsStatus(t, b)
	where := map[string]string{"sealed": "sealed in PostgreSQL (master key ", "vault": "vault secret/gatehouse/"}[provider]
	for _, name := range []string{"pepper", "audit-key", "signing-keys"} {
		if sb[name].Provider != provider || !strings.HasPrefix(sb[name].Where, where) ||
			sb[name].Where != sa[name].Where || sb[name].Version != sa[name].Version || !sb[name].DueAt.Equal(*sa[name].DueAt) {
			t.Errorf("%s on B: %+v; on A: %+v", name, sb[name], sa[name])
		}
	}
	if sb["signing-keys"].Version != 4 {
		t.Errorf("signing-keys version %d after the first and three rotations, want 4", sb["signing-keys"].Version)
	}
	if _, secret, _ := strings.Cut(env[0], "="); strings.Contains(raw, secret) || strings.Contains(b.logs.String(), secret) || strings.Contains(a.logs.String(), secret) {
		t.Errorf("%s in the status or the log", env[0][:strings.Index(env[0], "=")])
	}
}

// TestSecretsStatusEnv: a pepper given in the environment is used and
// listed with its variable, its age unknown (null, never overdue).
func TestSecretsStatusEnv(t *testing.T) {
	pepper := newMasterKey()
	s := startServerWith(t, serverOpts{config: "secrets: {provider: env}\n" + demoRoute,
		env: []string{"GATEHOUSE_SECRET_PEPPER=" + pepper, "GATEHOUSE_ADMIN_TOKEN=env-admin-token-0123456789"}})
	st, raw := secretsStatus(t, s)
	p := st["pepper"]
	if p.Provider != "env" || p.Where != "env GATEHOUSE_SECRET_PEPPER" || p.AgeSeconds != nil || p.DueAt != nil || *p.Overdue {
		t.Errorf("pepper from the environment: %+v", p)
	}
	if strings.Contains(raw, pepper) {
		t.Error("the pepper in the status")
	}
	text, _, _ := run(t, s.env(), "secrets", "status")
	if !regexp.MustCompile(`(?m)^pepper +pepper +env +- +365d +- +age unknown`).MatchString(text) {
		t.Errorf("secrets status:\n%s", text)
	}
}
