package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a private CA and a server certificate it signed for the
// DNS name gatehouse.internal only (not 127.0.0.1), as PEM files in dir.
func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gatehouse.internal"}, DNSNames: []string{"gatehouse.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// TestAdminListenerWithPrivateCA: --ca-cert (or GATEHOUSE_CACERT) and
// --tls-server-name reach an admin listener whose certificate a private
// CA signed; the wrong scheme, an unknown CA or the wrong name each say
// what to do (exit 1).
func TestAdminListenerWithPrivateCA(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCA(t, dir)
	s := startServer(t, "tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n  admin: true\n")
	hostport := strings.TrimPrefix(s.admin, "http://")
	https := "https://" + hostport
	tok := "GATEHOUSE_TOKEN=" + s.token
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"private CA and server name", []string{"GATEHOUSE_ADDR=" + https, tok}, []string{"keys", "list", "--ca-cert", caFile, "--tls-server-name", "gatehouse.internal"}, 0, ""},
		{"from the environment", []string{"GATEHOUSE_ADDR=" + https, tok, "GATEHOUSE_CACERT=" + caFile, "GATEHOUSE_TLS_SERVER_NAME=gatehouse.internal"}, []string{"keys", "list"}, 0, ""},
		{"http:// against TLS", []string{"GATEHOUSE_ADDR=" + s.admin, tok}, []string{"keys", "list"}, 1,
			"gatehouse: the admin API at " + s.admin + " speaks TLS: use " + https},
		{"unknown CA", []string{"GATEHOUSE_ADDR=" + https, tok}, []string{"keys", "list", "--tls-server-name", "gatehouse.internal"}, 1,
			"signed by an unknown authority: pass the CA's PEM file with --ca-cert or GATEHOUSE_CACERT"},
		{"wrong name", []string{"GATEHOUSE_ADDR=" + https, tok}, []string{"keys", "list", "--ca-cert", caFile}, 1, "--tls-server-name NAME"},
		{"not a PEM file", []string{"GATEHOUSE_ADDR=" + https, tok}, []string{"keys", "list", "--ca-cert", keyFile + ".missing"}, 2, "gatehouse: --ca-cert: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, e, code := run(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(e, tt.want) || (code == 0 && !strings.Contains(out, "ID")) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, e, tt.code, tt.want)
			}
		})
	}

	// A sign-in keeps its TLS settings for later commands.
	pw := "correct horse battery staple 42!"
	if _, e, code := runIn(t, []string{"GATEHOUSE_ADDR=" + https, tok, "GATEHOUSE_CACERT=" + caFile, "GATEHOUSE_TLS_SERVER_NAME=gatehouse.internal"}, pw+"\n",
		"users", "create", "fay", "--role", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	home := []string{"GATEHOUSE_TOKEN=", "GATEHOUSE_ADDR=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}
	if _, e, code := runIn(t, home, pw+"\n", "login", "--addr", https, "--ca-cert", caFile, "--tls-server-name", "gatehouse.internal", "--username", "fay", "--password-stdin"); code != 0 {
		t.Fatalf("login over TLS: %d %s", code, e)
	}
	if _, e, code := runIn(t, home, "", "users", "list"); code != 0 {
		t.Errorf("a later command with the stored TLS settings: %d %s", code, e)
	}
}

// TestHTTPSAgainstPlainHTTP: https:// against a plain listener says so.
func TestHTTPSAgainstPlainHTTP(t *testing.T) {
	s := startServer(t, "")
	https := "https://" + strings.TrimPrefix(s.admin, "http://")
	_, e, code := run(t, []string{"GATEHOUSE_ADDR=" + https, "GATEHOUSE_TOKEN=" + s.token}, "keys", "list")
	if code != 1 || !strings.Contains(e, "speaks plain HTTP, not TLS: use "+s.admin) {
		t.Errorf("exit %d, stderr %q", code, e)
	}
}
