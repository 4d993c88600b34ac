package ui_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/ui"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var entryLinkRE = regexp.MustCompile(`href="/ui/audit/(\d+)"`)

// entryLinks are the entry indexes a list page links to.
func entryLinks(body string) []string {
	var out []string
	for _, m := range entryLinkRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// tbody is the list's table body.
func tbody(body string) string {
	_, after, _ := strings.Cut(body, "<tbody>")
	in, _, _ := strings.Cut(after, "</tbody>")
	return in
}

var nextRE = regexp.MustCompile(`<a href="([^"]+)" rel="next">Next page</a>`)

// makeKeys creates n keys through the API (admin.key.create events).
func makeKeys(t *testing.T, e *uitest.Env, n int, name string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		var k struct{ ID string }
		if code := e.API("POST", "/v1/keys", map[string]any{"name": fmt.Sprintf("%s %d", name, i), "scopes": []string{"demo:read"}}, &k); code != http.StatusCreated {
			t.Fatalf("create key: HTTP %d", code)
		}
		ids = append(ids, k.ID)
	}
	return ids
}

// TestAuditViewerFiltersJSOff: the list's filters (type, actor, time),
// each a form field sent to GET /v1/audit; bad values shown as the API
// or the form words them, never a 5xx.
func TestAuditViewerFiltersJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "auditor")
	makeKeys(t, e, 3, "<script>alert(1)</script>")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)

	res, body := f.get("/ui/audit")
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("list: HTTP %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	for _, id := range []string{"audit-type", "audit-actor", "audit-since", "audit-until", "audit-cursor"} {
		if !strings.Contains(body, `<label for="`+id+`">`) || !strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("control %s has no label", id)
		}
	}
	if len(entryLinks(body)) == 0 {
		t.Fatal("no entries listed")
	}

	_, body = f.get("/ui/audit?type=admin.key.create")
	if got := entryLinks(body); len(got) != 3 {
		t.Fatalf("type filter: %d entries, want 3: %s", len(got), body)
	}
	if strings.Contains(tbody(body), "admin.login.success") {
		t.Error("type filter lists other types")
	}
	_, body = f.get("/ui/audit?type=admin.key.*")
	if got := entryLinks(body); len(got) != 3 {
		t.Fatalf("type prefix: %d entries, want 3", len(got))
	}
	_, body = f.get("/ui/audit?actor=user:alice")
	if len(entryLinks(body)) == 0 || strings.Contains(tbody(body), "admin.key.create") {
		t.Fatalf("actor filter: %s", body)
	}
	_, body = f.get("/ui/audit?type=admin.key.create&until=2000-01-01T00:00")
	if got := entryLinks(body); len(got) != 0 || !strings.Contains(body, "No entries match") {
		t.Fatalf("until 2000: %d entries", len(got))
	}
	_, body = f.get("/ui/audit?type=admin.key.create&since=2000-01-01T00:00:00Z&until=2100-01-01T00:00")
	if got := entryLinks(body); len(got) != 3 {
		t.Fatalf("2000 to 2100: %d entries, want 3", len(got))
	}

	for _, tt := range []struct{ name, query, want string }{
		{"unknown type", "type=admin.nope", "unknown event type &#34;admin.nope&#34;"},
		{"bad since", "since=yesterday", "since: must be a date and time"},
		{"bad until", "until=2026-13-40T99:99", "until: must be a date and time"},
		{"bad cursor", "cursor=-1", "Start at entry: must be an entry index"},
		{"hostile type", "type=%3Cscript%3E", "&lt;script&gt;"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := f.get("/ui/audit?" + tt.query)
			if res.StatusCode != 400 || !strings.Contains(body, tt.want) {
				t.Fatalf("HTTP %d, want 400 with %q: %s", res.StatusCode, tt.want, body)
			}
			if strings.Contains(body, "<script>") {
				t.Fatal("unescaped input")
			}
		})
	}
	e.NoCSPReports()
}

// TestAuditViewerPagingJSOff: pages of 50 through the API's cursor, no
// entry on two pages, the end said; the newest entries a click away.
func TestAuditViewerPagingJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	ids := makeKeys(t, e, 60, "k")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)

	_, body := f.get("/ui/audit?type=admin.key.create")
	page1 := entryLinks(body)
	if len(page1) != 50 {
		t.Fatalf("page 1: %d entries, want 50", len(page1))
	}
	m := nextRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no next page link")
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.Contains(next, "type=admin.key.create") || !strings.Contains(next, "cursor=") {
		t.Fatalf("next link %q keeps neither the filter nor a cursor", next)
	}
	_, body = f.get(next)
	page2 := entryLinks(body)
	if len(page2) != 10 {
		t.Fatalf("page 2: %d entries, want 10", len(page2))
	}
	seen := map[string]bool{}
	for _, i := range append(page1, page2...) {
		if seen[i] {
			t.Fatalf("entry %s on two pages", i)
		}
		seen[i] = true
	}
	if !strings.Contains(body, "End of the log.") || !strings.Contains(body, "First page") {
		t.Error("last page: no end marker or first-page link")
	}

	_, body = f.get("/ui/audit?at=newest")
	if n := len(entryLinks(body)); n == 0 || n > 50 {
		t.Fatalf("newest: %d entries", n)
	}
	if !strings.Contains(body, ids[len(ids)-1]) {
		t.Error("the newest page does not show the last key created")
	}
}

// TestAuditEntryVerified: an entry's detail shows its fields escaped and
// its inclusion proof verified against the newest checkpoint, with the
// checkpoint's size and age; bad or missing indexes are 4xx.
func TestAuditEntryVerified(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "auditor")
	makeKeys(t, e, 2, "<script>alert(1)</script>")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/audit?type=admin.key.create")
	links := entryLinks(body)
	if len(links) != 2 {
		t.Fatalf("%d key events", len(links))
	}
	res, body := f.get("/ui/audit/" + links[1])
	if res.StatusCode != 200 {
		t.Fatalf("detail: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{"Verified:", "admin.key.create", "tree size", "by the time of its last entry", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	if strings.Contains(body, "NOT verified") || strings.Contains(body, "<script>alert") {
		t.Fatalf("detail: %s", body)
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/ui/audit/abc", 400},
		{"/ui/audit/-1", 400},
		{"/ui/audit/99999999", 404},
		{"/ui/audit/18446744073709551616", 400},
	} {
		if res, body := f.get(tt.path); res.StatusCode != tt.want {
			t.Errorf("%s: HTTP %d, want %d: %s", tt.path, res.StatusCode, tt.want, body)
		}
	}
	e.NoCSPReports()
}

// tamperAPI forwards the console's admin API calls to a real Gatehouse's
// admin listener, letting alter change an answer's body by path.
type tamperAPI struct {
	admin string
	alter func(path string, body []byte) []byte
}

func (p *tamperAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.admin+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if p.alter != nil && res.StatusCode < 300 {
		body = p.alter(r.URL.Path, body)
	}
	for k, v := range res.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(res.StatusCode)
	w.Write(body)
}

// alterProof decodes an answer of /v1/audit/proof, changes it, encodes it.
func alterProof(body []byte, change func(p *audit.Proof)) []byte {
	var p audit.Proof
	if err := json.Unmarshal(body, &p); err != nil {
		return body
	}
	change(&p)
	b, _ := json.Marshal(p)
	return b
}

// TestAuditEntryTampered: a console whose admin API answers are altered
// on the way (proofs, entries, checkpoints and keys of a real log) shows
// NOT verified and why, never Verified.
func TestAuditEntryTampered(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "auditor")
	makeKeys(t, e, 4, "tamper")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/audit?type=admin.key.create")
	links := entryLinks(body)
	if len(links) != 4 {
		t.Fatalf("%d key events", len(links))
	}
	index := links[1]

	var origin string
	{ // the log's origin, from its checkpoint's first line
		req, _ := http.NewRequest("GET", e.Admin+"/v1/audit/checkpoint", nil)
		req.Header.Set("Authorization", "Bearer "+uitest.AdminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		origin, _, _ = strings.Cut(string(b), "\n")
	}
	forger, err := audit.GenerateSignerKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, forgedVKey, err := audit.ParseSignerKey(forger, origin)
	if err != nil {
		t.Fatal(err)
	}
	// forge re-signs a checkpoint's size and root with another key.
	forge := func(signed []byte) []byte {
		text, _, _ := strings.Cut(string(signed), "\n\n")
		cp, err := audit.ParseCheckpoint(text + "\n")
		if err != nil {
			t.Errorf("parse checkpoint: %v", err)
			return signed
		}
		out, err := audit.SignCheckpoint(signer, cp.Size, cp.Root)
		if err != nil {
			t.Errorf("sign: %v", err)
		}
		return out
	}

	tests := []struct {
		name  string
		alter func(path string, body []byte) []byte
		want  string // in the NOT verified reason
	}{
		{"untouched", nil, ""},
		{"proof hash flipped", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) { p.Hashes[0][0] ^= 1 })
		}, "does not lead to the checkpoint"},
		{"proof hash dropped", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) { p.Hashes = p.Hashes[1:] })
		}, "does not lead to the checkpoint"},
		{"entry proven altered", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) { p.Entry = bytes.Replace(p.Entry, []byte("tamper"), []byte("tampex"), 1) })
		}, "leaf hash is not the hash"},
		{"entry proven altered, leaf rehashed", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) {
				p.Entry = bytes.Replace(p.Entry, []byte("tamper"), []byte("tampex"), 1)
				p.LeafHash = rfc6962.DefaultHasher.HashLeaf(p.Entry)
			})
		}, "does not lead to the checkpoint"},
		{"entry listed altered", func(path string, b []byte) []byte {
			if path != "/v1/audit" {
				return b
			}
			return bytes.Replace(b, []byte("tamper"), []byte("tampex"), 1)
		}, "not the entry proven"},
		{"other entry's proof", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) { p.Index++ })
		}, "the proof is of entry"},
		{"checkpoints forged", func(path string, b []byte) []byte {
			switch path {
			case "/v1/audit/checkpoint":
				return forge(b)
			case "/v1/audit/proof":
				return alterProof(b, func(p *audit.Proof) { p.Checkpoint = string(forge([]byte(p.Checkpoint))) })
			}
			return b
		}, "not signed by the log"},
		{"proof's checkpoint forged", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return alterProof(b, func(p *audit.Proof) { p.Checkpoint = string(forge([]byte(p.Checkpoint))) })
		}, "the proof's checkpoint"},
		{"key chain replaced", func(path string, b []byte) []byte {
			if path != "/v1/audit/keys" {
				return b
			}
			out, _ := json.Marshal(map[string]any{"keys": []map[string]any{{"verifier_key": forgedVKey, "key_id": "forged", "since_tree_size": 0, "handover_checkpoint": -1}}})
			return out
		}, "the newest checkpoint"},
		{"proof refused", func(path string, b []byte) []byte {
			if path != "/v1/audit/proof" {
				return b
			}
			return []byte("{")
		}, "the admin API gave no proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			console, err := ui.New(ui.Config{API: &tamperAPI{admin: e.Admin, alter: tt.alter}})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(console)
			defer srv.Close()
			// The session cookie is the real listener's: cookies are per
			// host, not per port.
			u, _ := url.Parse(srv.URL)
			f.client.Jar.SetCookies(u, f.client.Jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(e.Admin, "http://")}))
			res, err := f.client.Get(srv.URL + "/ui/audit/" + index)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body := string(b)
			if res.StatusCode >= 500 {
				t.Fatalf("HTTP %d", res.StatusCode)
			}
			if tt.want == "" {
				if !strings.Contains(body, "Verified:") || strings.Contains(body, "NOT verified") {
					t.Fatalf("untouched answers not verified: %s", body)
				}
				return
			}
			m := regexp.MustCompile(`NOT verified: ([^<]*)</p>`).FindStringSubmatch(body)
			if m == nil || strings.Contains(body, "Verified:") {
				t.Fatalf("tampered answers not refused: %s", body)
			}
			if !strings.Contains(html.UnescapeString(m[1]), tt.want) {
				t.Fatalf("reason %q, want %q", m[1], tt.want)
			}
		})
	}
}

// TestAuditEntryTamperedOnDisk: an entry altered in the log's files (same
// length, so the log still reads) is listed as altered, and its detail
// says NOT verified: the log refuses to prove a record that does not
// match its leaf hash.
func TestAuditEntryTamperedOnDisk(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "auditor")
	makeKeys(t, e, 2, "ondisk-original")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/audit?type=admin.key.create")
	links := entryLinks(body)
	if len(links) != 2 {
		t.Fatalf("%d key events", len(links))
	}
	if _, body := f.get("/ui/audit/" + links[0]); !strings.Contains(body, "Verified:") {
		t.Fatalf("before tampering: %s", body)
	}
	dir := filepath.Join(e.DataDir, "audit")
	altered := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte("ondisk-original 0")) || len(b) < 24 {
			return nil
		}
		// A segment: a 24-byte header, then frames of length(4),
		// crc32c(4), payload. The tamperer fixes the frame's checksum.
		for pos := 24; pos+8 <= len(b); {
			n := int(binary.BigEndian.Uint32(b[pos:]))
			if n == 0 || pos+8+n > len(b) {
				break
			}
			payload := b[pos+8 : pos+8+n]
			if i := bytes.Index(payload, []byte("ondisk-original 0")); i >= 0 {
				copy(payload[i:], "ondisk-tampered 0")
				binary.BigEndian.PutUint32(b[pos+4:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
				altered++
			}
			pos += 8 + n
		}
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil || altered == 0 {
		t.Fatalf("alter the log's files: %v (%d altered)", err, altered)
	}
	res, body := f.get("/ui/audit/" + links[0])
	if res.StatusCode >= 500 {
		t.Fatalf("HTTP %d", res.StatusCode)
	}
	if !strings.Contains(body, "ondisk-tampered 0") {
		t.Skipf("the log serves entries from memory, not its files: the tampered bytes are not read back")
	}
	if !strings.Contains(body, "NOT verified") || strings.Contains(body, "Verified:") {
		t.Fatalf("tampered on disk, still verified: %s", body)
	}
	// The other entry still verifies.
	if _, body := f.get("/ui/audit/" + links[1]); !strings.Contains(body, "Verified:") {
		t.Fatalf("untouched entry: %s", body)
	}
}
