package app_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
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

// flood sends n concurrent Basic sign-ins with random usernames to the
// admin listener and returns the responses' statuses and Retry-After
// headers by status.
func signInFlood(t *testing.T, h *harness, n int) map[int][]*http.Response {
	t.Helper()
	var (
		mu    sync.Mutex
		out   = map[int][]*http.Response{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
// take the process more than 256 MiB above where it was — unbounded, they
// take 150 × 19 MiB ≈ 2.8 GiB. Peak RSS is measured with VmHWM after
// resetting it through /proc/self/clear_refs.
func TestSignInFloodMemoryBounded(t *testing.T) {
	h := MustStart(t) // the default budget: GOMAXPROCS hashes
	const bound = 256 << 20
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
