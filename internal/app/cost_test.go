package app_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procStatus reads one "Name:   N kB" field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse %s %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// signInFlood sends n concurrent Basic sign-ins with random usernames to
// the admin listener, each from its own loopback address (a distributed
// attacker: no per-source or per-username limit applies), and returns the
// responses by status.
func signInFlood(t *testing.T, h *harness, n int) map[int][]*http.Response {
	t.Helper()
	var (
		mu    sync.Mutex
		out   = map[int][]*http.Response{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := h.from(fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)).client
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest("GET", h.admin+"/v1/keys", nil)
			req.SetBasicAuth("flood-"+rand.Text(), "not-the-password-"+strconv.Itoa(i))
			<-start
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("sign-in %d: %v", i, err)
				return
			}
			t.Cleanup(func() { res.Body.Close() })
			mu.Lock()
			out[res.StatusCode] = append(out[res.StatusCode], res)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestSignInFloodMemoryBounded: 150 concurrent Basic sign-ins with random
// usernames (each verified against the dummy argon2id hash, 19 MiB) must not
// take the process more than 256 MiB above where it was (768 MiB under the
// race detector) — unbounded, they
// take 150 × 19 MiB ≈ 2.8 GiB. Peak RSS is measured with VmHWM after
// resetting it through /proc/self/clear_refs.
func TestSignInFloodMemoryBounded(t *testing.T) {
	h := MustStart(t) // the default budget: GOMAXPROCS hashes
	bound := int64(256 << 20)
	if raceEnabled {
		bound *= 3 // the race detector's shadow memory
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procStatus(t, "VmHWM")
	got := signInFlood(t, h, 150)
	peak := procStatus(t, "VmHWM")
	t.Logf("peak RSS %d MiB, before %d MiB, growth %d MiB (bound %d MiB); statuses: %v",
		peak>>20, before>>20, (peak-before)>>20, bound>>20, statusCounts(got))
	if peak-before > bound {
		t.Errorf("a sign-in flood grew the peak RSS by %d MiB, more than %d MiB", (peak-before)>>20, bound>>20)
	}
	for code, rs := range got {
		if code != http.StatusUnauthorized && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			t.Errorf("%d sign-ins answered %d; want 401, 429 or 503", len(rs), code)
		}
	}
}

// TestSignInFloodRefusedWithRetryAfter: with room for one hash and almost
// no queue wait, the attempts that find no room are answered 503 with
// Retry-After and the JSON error, never 500, and do not count toward
// anyone's lockout.
func TestSignInFloodRefusedWithRetryAfter(t *testing.T) {
	h := MustStartWith(t, "limits:\n  password_hash_memory: 19MiB\n  password_hash_wait: 1ms\n")
	got := signInFlood(t, h, 60)
	t.Logf("statuses: %v", statusCounts(got))
	if len(got[http.StatusServiceUnavailable]) == 0 {
		t.Fatalf("no sign-in was refused for want of hashing room: %v", statusCounts(got))
	}
	for _, res := range got[http.StatusServiceUnavailable] {
		if ra := res.Header.Get("Retry-After"); ra == "" {
			t.Errorf("503 without Retry-After")
		}
		if e := decodeError(t, res); e.Error.Code != "unavailable" {
			t.Errorf("503 error code %q", e.Error.Code)
		}
	}
	for code, rs := range got {
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Errorf("%d sign-ins answered %d", len(rs), code)
		}
	}
}

func statusCounts(m map[int][]*http.Response) string {
	var b strings.Builder
	for code, rs := range m {
		fmt.Fprintf(&b, "%d×%d ", code, len(rs))
	}
	return b.String()
}

// from returns a copy of h whose requests come from the loopback address
// ip (Linux routes all of 127.0.0.0/8 to lo).
func (h *harness) from(ip string) *harness {
	c := *h
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c.client = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	return &c
}

// TestClientLockoutFromAnotherAddress: an attacker who knows a client's id
// (it is not secret) fails against it from 127.0.0.2 until locked out; the
// real client, signing in from 127.0.0.1, still gets its tokens. An admin
// can lift the lockout (audited), and an address failing against many
// clients is locked for all of them.
func TestClientLockoutFromAnotherAddress(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals")
	cc := url.Values{"grant_type": {"client_credentials"}}
	real, attacker, sprayer := h.from("127.0.0.1"), h.from("127.0.0.2"), h.from("127.0.0.3")
	wrong := c.ClientSecret[:len(c.ClientSecret)-8] + "AAAAAAAA"

	for i := 0; i < 12; i++ {
		a := attacker.token(cc, c.ClientID, wrong)
		if a.status != 401 && a.status != 429 {
			t.Fatalf("attempt %d from 127.0.0.2: %d", i, a.status)
		}
		if i >= 5 && (a.status != 429 || a.header.Get("Retry-After") == "") {
			t.Fatalf("attempt %d from 127.0.0.2: %d (Retry-After %q), want 429 once locked", i, a.status, a.header.Get("Retry-After"))
		}
		if a := real.token(cc, c.ClientID, c.ClientSecret); a.status != 200 {
			t.Fatalf("after %d failures from 127.0.0.2, the real client from 127.0.0.1 got %d %s %s", i+1, a.status, a.Error, a.Desc)
		}
	}
	if a := attacker.token(cc, c.ClientID, c.ClientSecret); a.status != 429 {
		t.Fatalf("the locked pair (client, 127.0.0.2) got %d with the right secret; want 429", a.status)
	}

	var out struct {
		ClientID string `json:"client_id"`
	}
	if code := h.adminCall("POST", "/v1/clients/"+c.ClientID+"/unlock", nil, &out); code != 200 || out.ClientID != c.ClientID {
		t.Fatalf("unlock: %d %+v", code, out)
	}
	if a := attacker.token(cc, c.ClientID, c.ClientSecret); a.status != 200 {
		t.Fatalf("after unlock, 127.0.0.2 with the right secret got %d %s", a.status, a.Desc)
	}
	if code := h.adminCall("POST", "/v1/clients/cl_nosuchclientnosuchclient/unlock", nil, nil); code != 404 {
		t.Errorf("unlock of an unknown client: %d, want 404", code)
	}
	events := h.auditEvents("admin.client.unlock")
	if len(events) != 1 || events[0]["resource"] != "client:"+c.ClientID {
		t.Errorf("client.unlock events: %v", events)
	}

	// Spraying many client ids from one address locks the address.
	other := h.createClient("read:signals")
	for i := 0; i < 25; i++ {
		sprayer.token(cc, fmt.Sprintf("cl_%016d", i), "gcs_nope")
	}
	if a := sprayer.token(cc, other.ClientID, other.ClientSecret); a.status != 429 {
		t.Errorf("an address that failed against 25 clients got %d for a right secret; want 429", a.status)
	}
	if a := real.token(cc, other.ClientID, other.ClientSecret); a.status != 200 {
		t.Errorf("another address got %d", a.status)
	}
}

// closedWithin reads from c until the server closes it, failing the test
// if that takes longer than limit (the bound under test is far shorter).
// It returns what the server sent.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v; got %q", limit, b)
	}
	return string(b)
}

// TestSlowClientsCutOff: raw sockets that trickle a body, never send it,
// or never finish their headers are closed by the server on both listeners
// (a body too slow is answered 408 first), well before the test's own
// 15-second bound.
func TestSlowClientsCutOff(t *testing.T) {
	h := MustStartFull(t, "limits:\n  read_header_timeout: 500ms\n  read_timeout: 1s\n", `
  - name: uploads
    path: /uploads/
    upstream: {{UP}}
    public: true
  - name: trickle-rate
    path: /rate/
    upstream: {{UP}}
    public: true
    read_timeout: 60s
    min_rate: 1KiB
`)
	pub, adm := h.app.Addr(), h.app.AdminAddr()
	body := func(addr, path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
	}
	tests := []struct {
		name    string
		addr    string
		send    string
		trickle bool // one more byte every 100ms after send
		want408 bool
	}{
		{"public: body never sent", pub, body(pub, "/uploads/x"), false, true},
		{"public: body trickles (total deadline)", pub, body(pub, "/uploads/x") + `{"a":`, true, true},
		{"public: body below min_rate", pub, body(pub, "/rate/x") + `{"a":`, true, true},
		{"public: headers never finish", pub, "GET /uploads/x HTTP/1.1\r\nHost: x\r\nX-Slow: ", true, false},
		{"admin: body trickles", adm, body(adm, "/v1/session") + `{"username":`, true, false},
		{"admin: headers never finish", adm, "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Slow: ", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.trickle {
				go func() {
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := c.Write([]byte("a")); err != nil {
								return
							}
						}
					}
				}()
			}
			got := closedWithin(t, c, 15*time.Second)
			if tc.want408 && !strings.HasPrefix(got, "HTTP/1.1 408 ") {
				t.Errorf("answer before close: %q, want a 408", got)
			}
			if strings.HasPrefix(got, "HTTP/1.1 5") {
				t.Errorf("a slow client got a 5xx: %q", got)
			}
		})
	}
}

// TestBufferedRouteHoldsNoUpstreamConnection: on a route with
// buffer_request, a body that arrives in pieces (chunked) is read whole
// before the upstream is dialled: the upstream's first connection comes
// after the last byte, and it receives the body with a Content-Length.
func TestBufferedRouteHoldsNoUpstreamConnection(t *testing.T) {
	var sent, sentAtDial atomic.Int64
	sentAtDial.Store(-1)
	var gotLen atomic.Int64
	var gotBody atomic.Value
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotLen.Store(r.ContentLength)
		gotBody.Store(string(b))
		io.WriteString(w, "stored")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			sentAtDial.CompareAndSwap(-1, sent.Load())
		}
	}
	up.Start()
	defer up.Close()
	h := MustStartFull(t, "", `
  - name: buffered
    path: /buffered/
    upstream: `+up.URL+`
    public: true
    buffer_request: true
    max_body: 1KiB
`)
	c, err := net.Dial("tcp", h.app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pieces := []string{`{"part":1,`, `"part2":"two",`, `"end":true}`}
	io.WriteString(c, "POST /buffered/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, p := range pieces {
		fmt.Fprintf(c, "%x\r\n%s\r\n", len(p), p)
		// Give a gateway that streams the time to dial the upstream.
		time.Sleep(150 * time.Millisecond)
		sent.Add(int64(len(p)))
	}
	sent.Add(1) // the last chunk
	io.WriteString(c, "0\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	whole := strings.Join(pieces, "")
	if res.StatusCode != 200 {
		t.Fatalf("buffered upload: %d", res.StatusCode)
	}
	if at := sentAtDial.Load(); at != int64(len(whole))+1 {
		t.Errorf("the upstream was dialled when %d of %d body bytes had been sent; want after the whole body", at, len(whole))
	}
	if gotLen.Load() != int64(len(whole)) || gotBody.Load() != whole {
		t.Errorf("upstream got Content-Length %d body %q, want %d %q", gotLen.Load(), gotBody.Load(), len(whole), whole)
	}

	// Over max_body: 413.
	res2 := h.do("POST", h.base+"/buffered/x", strings.NewReader(strings.Repeat("x", 2048)), "Content-Type: application/json", "Transfer-Encoding: chunked")
	if res2.StatusCode != 413 {
		t.Errorf("buffered body over max_body: %d, want 413", res2.StatusCode)
	}
}

// TestTokenEndpointFloodAggregated: a flood of wrong client secrets at
// /oauth/token from one address spends the address's pre-authentication
// failures like bad keys on a route: past the threshold it is refused 429
// at the door, and the audit log holds the failures up to the threshold
// and one preauth.limited event counting the rest, not one event each.
func TestTokenEndpointFloodAggregated(t *testing.T) {
	h := MustStartWith(t, "limits:\n  preauth: {failures: 10, per: 1m}\n")
	flooder := h.from("127.0.0.4")
	cc := url.Values{"grant_type": {"client_credentials"}}
	codes := map[int]int{}
	for i := 0; i < 60; i++ {
		a := flooder.token(cc, fmt.Sprintf("cl_%016d", i), "gcs_"+rand.Text())
		codes[a.status]++
	}
	if codes[401] > 10 || codes[429] < 50 {
		t.Errorf("answers %v: want at most 10 × 401, then 429", codes)
	}
	if n := len(h.auditEvents("oauth.token")); n > 10 {
		t.Errorf("%d oauth.token events for a 60-attempt flood; want at most the 10 before the threshold", n)
	}
	h.clock.Advance(61 * time.Second) // the window ends; the next refusal records it
	flooder.token(cc, "cl_0000000000000000", "gcs_x")
	var counted float64
	for _, e := range h.auditEvents("preauth.limited") {
		if req, _ := e["request"].(map[string]any); req["source_ip"] == "127.0.0.4" {
			d, _ := e["details"].(map[string]any)
			c, _ := d["count"].(float64)
			counted += c
		}
	}
	if counted != float64(codes[429]) {
		t.Errorf("preauth.limited events count %v refusals, want %d", counted, codes[429])
	}
}
