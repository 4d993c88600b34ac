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
