package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of the CA certificate
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return ca
}

// issue writes a leaf certificate and key and returns their files.
func (ca *testCA) issue(t *testing.T, dir, cn string, client bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{cn, "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, cn+"-"+fmt.Sprint(tmpl.SerialNumber)+".pem"), filepath.Join(dir, cn+"-"+fmt.Sprint(tmpl.SerialNumber)+"-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func tlsClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
}

// startTLS runs a gatehouse with TLS on the public listener.
func startTLS(t *testing.T, extraTLS string) (*harness, *testCA, string) {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, dir, "server")
	cert, key := ca.issue(t, dir, "gatehouse.test", false)
	// Copy to fixed names, so a test can replace them.
	os.Rename(cert, filepath.Join(dir, "tls.crt"))
	os.Rename(key, filepath.Join(dir, "tls.key"))
	h := MustStartWith(t, fmt.Sprintf("tls:\n  cert_file: %s/tls.crt\n  key_file: %s/tls.key\n  redirect_listen: 127.0.0.1:0\n%s", dir, dir, extraTLS))
	h.base = strings.Replace(h.base, "http://", "https://", 1)
	h.client = tlsClient(&tls.Config{RootCAs: ca.pool()})
	return h, ca, dir
}

func TestTLSVersionsAndSuites(t *testing.T) {
	h, ca, _ := startTLS(t, "")
	addr := strings.TrimPrefix(h.base, "https://")
	tests := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 CBC suite only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.RootCAs, tt.cfg.ServerName = ca.pool(), "gatehouse.test"
			c, err := tls.Dial("tcp", addr, tt.cfg)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if res := h.do("GET", h.base+"/health", nil); res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("health over TLS: %d", res.StatusCode)
	}
}

func TestHTTPSRedirect(t *testing.T) {
	h, _, _ := startTLS(t, "")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get("http://" + h.app.RedirectAddr() + "/api/v1/signals/x?q=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(h.base, "https://"))
	want := "https://127.0.0.1:" + port + "/api/v1/signals/x?q=1"
	if res.StatusCode != 308 || res.Header.Get("Location") != want {
		t.Fatalf("redirect: %d %q, want 308 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

func TestCertificateHotReload(t *testing.T) {
	h, ca, dir := startTLS(t, "")
	serial := func(c *http.Client) *big.Int {
		res, err := c.Get(h.base + "/health")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close() // keep the connection for reuse
		return res.TLS.PeerCertificates[0].SerialNumber
	}
	// A keep-alive connection made before the reload.
	before := serial(h.client)
	cert, key := ca.issue(t, dir, "gatehouse.test", false)
	time.Sleep(1100 * time.Millisecond) // reload checks at most once a second
	os.Rename(cert, filepath.Join(dir, "tls.crt"))
	os.Rename(key, filepath.Join(dir, "tls.key"))
	if s := serial(h.client); s.Cmp(before) != 0 {
		t.Fatalf("existing connection changed certificate")
	}
	fresh := tlsClient(&tls.Config{RootCAs: ca.pool()})
	h.client = fresh
	var after *big.Int
	for i := 0; i < 30; i++ {
		h.do("GET", h.base+"/health", nil) // let the reloader notice
		fresh.CloseIdleConnections()
		if after = serial(fresh); after.Cmp(before) != 0 {
			break
		}
		fresh.CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
	}
	if after.Cmp(before) == 0 {
		t.Fatal("new connections still get the old certificate")
	}
}

func TestMutualTLSInbound(t *testing.T) {
	dir := t.TempDir()
	clientCA := newCA(t, dir, "clients")
	otherCA := newCA(t, dir, "other")
	h, ca, _ := startTLS(t, fmt.Sprintf("  client_ca_file: %s\n  client_principals:\n    - {subject: svc-a, id: svc-a, scopes: [read:signals]}\n", clientCA.file))
	withCert := func(c *testCA, cn string) *http.Client {
		cf, kf := c.issue(t, dir, cn, true)
		pair, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			t.Fatal(err)
		}
		// Present the certificate whatever CAs the server names (Go's
		// client would otherwise withhold one from another CA).
		return tlsClient(&tls.Config{RootCAs: ca.pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }})
	}
	url := h.base + "/api/v1/signals/x"
	h.client = withCert(clientCA, "svc-a")
	if res := h.do("GET", url, nil); res.StatusCode != 200 {
		t.Fatalf("mapped client certificate: %d", res.StatusCode)
	}
	if got, _ := h.up.lastRequest(); got.Header.Get("X-Gatehouse-Principal") != "svc-a" {
		t.Errorf("principal %q", got.Header.Get("X-Gatehouse-Principal"))
	}
	h.client = withCert(clientCA, "svc-unknown")
	if res := h.do("GET", url, nil); res.StatusCode != 401 {
		t.Fatalf("unmapped certificate: %d, want 401", res.StatusCode)
	}
	h.client = tlsClient(&tls.Config{RootCAs: ca.pool()})
	if res := h.do("GET", url, nil); res.StatusCode != 401 {
		t.Fatalf("no certificate: %d, want 401", res.StatusCode)
	}
	wrong := withCert(otherCA, "svc-a")
	if res, err := wrong.Get(url); err == nil {
		res.Body.Close()
		t.Fatalf("certificate from another CA: HTTP %d, want a handshake failure", res.StatusCode)
	}
}

func TestMutualTLSOutbound(t *testing.T) {
	dir := t.TempDir()
	upCA := newCA(t, dir, "upstream")
	unknownCA := newCA(t, dir, "unknown")
	clientCert, clientKey := upCA.issue(t, dir, "gatehouse-client", true)
	newTLSUpstream := func(ca *testCA) *httptest.Server {
		cf, kf := ca.issue(t, dir, "upstream.test", false)
		pair, _ := tls.LoadX509KeyPair(cf, kf)
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "client "+r.TLS.PeerCertificates[0].Subject.CommonName)
		}))
		s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: upCA.pool(), ClientAuth: tls.RequireAndVerifyClientCert}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	good, bad := newTLSUpstream(upCA), newTLSUpstream(unknownCA)
	routes := fmt.Sprintf(`  - name: mtls-good
    path: /mtls/good/
    upstream: %s
    scopes: [demo:read]
    tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: upstream.test}
  - name: mtls-bad
    path: /mtls/bad/
    upstream: %s
    scopes: [demo:read]
    tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: upstream.test}
`, good.URL, upCA.file, clientCert, clientKey, bad.URL, upCA.file, clientCert, clientKey)
	h := MustStartFull(t, "", routes)
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}})
	res := h.do("GET", h.base+"/mtls/good/x", nil, "X-API-Key: "+k.Key)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(body) != "client gatehouse-client" {
		t.Fatalf("mTLS upstream: %d %q", res.StatusCode, body)
	}
	if res := h.do("GET", h.base+"/mtls/bad/x", nil, "X-API-Key: "+k.Key); res.StatusCode != 502 {
		t.Fatalf("upstream with a certificate from an unknown CA: %d, want 502", res.StatusCode)
	}
}

func TestCircuitBreaker(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	h := MustStartFull(t, "", fmt.Sprintf(`  - name: flaky
    path: /flaky/
    upstream: %s
    scopes: [demo:read]
    breaker: {consecutive_failures: 3, open_timeout: 1s}
`, up.URL))
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}})
	get := func() *http.Response { return h.do("GET", h.base+"/flaky/x", nil, "X-API-Key: "+k.Key) }
	for i := 0; i < 3; i++ {
		if res := get(); res.StatusCode != 503 {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	n := hits.Load()
	res := get()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || hits.Load() != n {
		t.Fatalf("open breaker: %d, Retry-After %q, upstream hit %v", res.StatusCode, res.Header.Get("Retry-After"), hits.Load() != n)
	}
	if e := decodeError(t, res); !strings.Contains(e.Error.Message, "circuit breaker open") {
		t.Errorf("message %q", e.Error.Message)
	}
	ready := h.do("GET", h.admin+"/health/ready", nil)
	body, _ := io.ReadAll(ready.Body)
	if ready.StatusCode != 200 || !strings.Contains(string(body), "open") {
		t.Errorf("readiness does not show the open breaker (or failed): %d %s", ready.StatusCode, body)
	}
	healthy.Store(true)
	time.Sleep(1100 * time.Millisecond)
	if res := get(); res.StatusCode != 200 {
		t.Fatalf("half-open probe: %d", res.StatusCode)
	}
	if res := get(); res.StatusCode != 200 {
		t.Fatalf("after closing: %d", res.StatusCode)
	}
	if !strings.Contains(h.logs.String(), `"to":"open"`) || !strings.Contains(h.logs.String(), `"to":"closed"`) {
		t.Error("breaker transitions not logged")
	}
}

func TestJSONSchemaValidation(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "order.json")
	os.WriteFile(schema, []byte(`{"type":"object","required":["sku","amount"],"properties":{"sku":{"type":"string"},"amount":{"type":"integer","minimum":1}},"additionalProperties":false}`), 0o644)
	h := MustStartFull(t, "", fmt.Sprintf(`  - name: orders
    path: /orders/
    methods: [POST]
    upstream: {{UP}}
    scopes: [demo:read]
    json_schema: %s
    content_types: [application/json]
`, schema))
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}})
	post := func(body, ct string) (*http.Response, errorOut) {
		res := h.do("POST", h.base+"/orders/x", strings.NewReader(body), "X-API-Key: "+k.Key, "Content-Type: "+ct)
		var e errorOut
		if res.StatusCode >= 400 {
			e = decodeError(t, res)
		}
		return res, e
	}
	if res, _ := post(`{"sku":"a","amount":2}`, "application/json"); res.StatusCode != 200 {
		t.Fatalf("valid body: %d", res.StatusCode)
	}
	if _, body := h.up.lastRequest(); string(body) != `{"sku":"a","amount":2}` {
		t.Errorf("upstream body %q", body)
	}
	for _, tt := range []struct {
		body, ct, want string
		status         int
	}{
		{`{"sku":"a","amount":0}`, "application/json", "/amount: minimum", 400},
		{`{"sku":"a"}`, "application/json", "/: required", 400},
		{`{"sku":1,"amount":2}`, "application/json", "/sku: type", 400},
		{`{"sku":"a","amount":2,"x":1}`, "application/json", "/: additionalProperties", 400},
		{`{not json`, "application/json", "not valid JSON", 400},
		{`{"sku":"a","amount":2}`, "text/plain", "Content-Type", 415},
	} {
		res, e := post(tt.body, tt.ct)
		if res.StatusCode != tt.status || !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("%s (%s): %d %q, want %d containing %q", tt.body, tt.ct, res.StatusCode, e.Error.Message, tt.status, tt.want)
		}
	}
}
