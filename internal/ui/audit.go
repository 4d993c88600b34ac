package ui

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// auditPerPage is how many entries a page of the audit viewer shows: one
// GET /v1/audit page, never the whole log.
const auditPerPage = 50

// auditTimeLayouts are the times the filter form takes: a datetime-local
// input's value (read as UTC) or RFC 3339.
var auditTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

type auditRow struct {
	audit.Entry
	Actor string
}

type auditListData struct {
	Entries                   []auditRow
	Type, Actor, Since, Until string // the filter form as sent
	From                      string // the entry index the page starts at
	Newest                    bool
	Next, First, NewestLink   string // links, "" when none
	Filtered                  bool
	// Searched, on a short page with a next one, is the range of entries
	// the API read ("A–B"): it stops after audit.ScanBudget entries.
	Searched string
	Types    []string
	Message  string
}

// auditPage is GET /ui/audit: one page of GET /v1/audit, filtered by
// type, actor and time, starting at an entry index (the API's cursor), or
// at the newest entries (?at=newest: the newest checkpoint's size less a
// page).
func auditPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := &auditListData{Type: strings.TrimSpace(q.Get("type")), Actor: strings.TrimSpace(q.Get("actor")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")), From: strings.TrimSpace(q.Get("cursor"))}
	for _, t := range audit.EventTypes() {
		d.Types = append(d.Types, t.Name)
	}
	d.Filtered = d.Type != "" || d.Actor != "" || d.Since != "" || d.Until != ""
	status := http.StatusOK
	api := url.Values{"limit": {strconv.Itoa(auditPerPage)}}
	fail := func(code int, msg string) {
		if d.Message == "" {
			d.Message, status = msg, code
		}
	}
	if d.Type != "" {
		api.Set("type", d.Type)
	}
	if d.Actor != "" {
		api.Set("actor", d.Actor)
	}
	for name, v := range map[string]string{"since": d.Since, "until": d.Until} {
		if v == "" {
			continue
		}
		t, ok := parseFormTime(v)
		if !ok {
			fail(http.StatusBadRequest, name+": must be a date and time (UTC), e.g. 2026-01-02T15:04, or RFC 3339")
			continue
		}
		api.Set(name, t.Format(time.RFC3339))
	}
	if q.Get("at") == "newest" {
		d.Newest = true
		cp, err := u.newestCheckpoint(r)
		if err != nil {
			fail(errStatus(err), u.errMessage(r, err))
		} else {
			d.From = strconv.FormatUint(cp.Size-min(cp.Size, auditPerPage), 10)
		}
	}
	if d.From != "" {
		if _, err := strconv.ParseUint(d.From, 10, 64); err != nil {
			fail(http.StatusBadRequest, "Start at entry: must be an entry index (0 or more)")
		}
		api.Set("cursor", d.From)
	}
	link := func(cursor string, newest bool) string {
		v := url.Values{}
		for k, val := range map[string]string{"type": d.Type, "actor": d.Actor, "since": d.Since, "until": d.Until, "cursor": cursor} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if newest {
			v.Set("at", "newest")
		}
		if len(v) == 0 {
			return "/ui/audit"
		}
		return "/ui/audit?" + v.Encode()
	}
	d.NewestLink = link("", true)
	if d.Message == "" {
		var page audit.Page
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/audit?"+api.Encode(), nil, &page); err != nil {
			fail(errStatus(err), u.errMessage(r, err))
		}
		for _, e := range page.Entries {
			d.Entries = append(d.Entries, auditRow{Entry: e, Actor: actorName(e.Event.Actor)})
		}
		if page.Next != "" {
			d.Next = link(page.Next, false)
			if n, err := strconv.ParseUint(page.Next, 10, 64); err == nil && n > 0 && len(page.Entries) < auditPerPage {
				from := d.From
				if from == "" {
					from = "0"
				}
				d.Searched = from + "–" + strconv.FormatUint(n-1, 10)
			}
		}
	}
	if d.From != "" && d.From != "0" {
		d.First = link("", false)
	}
	u.render(w, r, s, status, "audit.html", "Audit", d)
	return nil
}

// parseFormTime reads a filter form's time.
func parseFormTime(v string) (time.Time, bool) {
	for _, l := range auditTimeLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func actorName(a gatehouse.Actor) string {
	if a.ID == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.ID
}

// newestCheckpoint is GET /v1/audit/checkpoint, parsed but not verified
// (the list only needs its size).
func (u *UI) newestCheckpoint(r *http.Request) (audit.Checkpoint, error) {
	signed, err := u.rawCall(r, "/v1/audit/checkpoint")
	if err != nil {
		return audit.Checkpoint{}, err
	}
	text, _, _ := strings.Cut(string(signed), "\n\n")
	cp, err := audit.ParseCheckpoint(text + "\n")
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("newest audit checkpoint: %w", err)
	}
	return cp, nil
}

// rawCall is a GET of the admin API whose 2xx answer is not JSON.
func (u *UI) rawCall(r *http.Request, path string) ([]byte, error) {
	a, err := u.do(r.Context(), r, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if a.status >= 400 || a.trimmed {
		return nil, a.decode(nil)
	}
	return a.body.Bytes(), nil
}

// auditEntryData is an entry's detail page.
type auditEntryData struct {
	Index    uint64
	Entry    gatehouse.Event
	Actor    string
	Request  *gatehouse.RequestInfo
	Details  string // indented JSON
	Proven   string // the entry as proven (its leaf's bytes)
	Check    proofCheck
	Keys     []string // key ids of the chain verified with
	Back     string
	Problems []string // parts of the page the API would not give
}

// proofCheck is the outcome of checking an entry's inclusion proof
// against the newest checkpoint.
type proofCheck struct {
	Verified bool
	Why      string // why not verified
	// Size is the checkpoint's tree size; Root its root hash (base64).
	Size uint64
	Root string
	// LastEntry is the index of the checkpoint's last entry, LastTime its
	// time: the checkpoint's age, as checkpoints carry no time.
	LastEntry uint64
	LastTime  time.Time
	Hashes    int
}

// auditEntry is GET /ui/audit/{index}: the entry (GET /v1/audit), its
// inclusion proof (GET /v1/audit/proof) checked here against the newest
// checkpoint (GET /v1/audit/checkpoint) and the log's key chain (GET
// /v1/audit/keys), and the checkpoint's age.
func auditEntry(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		u.renderError(w, r, s, http.StatusBadRequest, "Audit entry: "+strconv.Quote(r.PathValue("index"))+" is not an entry index (0 or more).")
		return nil
	}
	var page audit.Page
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/audit?limit=1&cursor="+strconv.FormatUint(index, 10), nil, &page); err != nil {
		return err
	}
	if len(page.Entries) == 0 || page.Entries[0].Index != index {
		u.renderError(w, r, s, http.StatusNotFound, fmt.Sprintf("No audit entry %d: it is beyond the end of the log, or was pruned.", index))
		return nil
	}
	e := page.Entries[0].Event
	d := &auditEntryData{Index: index, Entry: e, Actor: actorName(e.Actor), Request: e.Request, Back: "/ui/audit?cursor=" + strconv.FormatUint(index, 10)}
	if len(e.Details) > 0 {
		// Readable (no \u003c for <): the template escapes it.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e.Details); err == nil {
			d.Details = strings.TrimSpace(b.String())
		}
	}
	d.Check, d.Keys, d.Proven = u.checkProof(r, index, e)
	u.render(w, r, s, http.StatusOK, "audit-entry.html", fmt.Sprintf("Audit entry %d", index), d)
	return nil
}

// checkProof fetches the newest checkpoint, the key chain and the proof
// of entry index and checks them; listed is the entry as GET /v1/audit
// gave it, which must be the entry proven.
func (u *UI) checkProof(r *http.Request, index uint64, listed gatehouse.Event) (c proofCheck, keyIDs []string, proven string) {
	notVerified := func(format string, args ...any) proofCheck {
		c.Verified, c.Why = false, fmt.Sprintf(format, args...)
		return c
	}
	signed, err := u.rawCall(r, "/v1/audit/checkpoint")
	if err != nil {
		return notVerified("the newest checkpoint could not be read: %s", u.errMessage(r, err)), nil, ""
	}
	var chain admin.AuditKeys
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/audit/keys", nil, &chain); err != nil {
		return notVerified("the log's key chain could not be read: %s", u.errMessage(r, err)), nil, ""
	}
	keys := audit.ChainKeys(chain.Keys)
	for _, k := range chain.Keys {
		keyIDs = append(keyIDs, k.KeyID)
	}
	var p audit.Proof
	perr := u.call(r.Context(), r, http.MethodGet, "/v1/audit/proof?index="+strconv.FormatUint(index, 10), nil, &p)
	if perr == nil {
		proven = string(p.Entry)
	}
	c = verifyProof(index, listed, signed, keys, p, perr)
	if c.Size > 0 {
		c.LastEntry = c.Size - 1
		var last audit.Page
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/audit?limit=1&cursor="+strconv.FormatUint(c.LastEntry, 10), nil, &last); err == nil &&
			len(last.Entries) == 1 && last.Entries[0].Index == c.LastEntry {
			c.LastTime = last.Entries[0].Event.Time
		}
	}
	return c, keyIDs, proven
}

// verifyProof checks proof p of entry index (perr: the API's refusal to
// give one) against signed, the newest checkpoint, with keys, the log's
// chain of verifier keys: both checkpoints' signatures, that the proof
// is against the newest checkpoint (or one signed after it), that the
// leaf is the hash of the entry proven, the inclusion path (RFC 6962,
// transparency-dev/merkle) and that the entry proven is the entry
// listed. A check that fails gives Verified false and why.
func verifyProof(index uint64, listed gatehouse.Event, signed []byte, keys []string, p audit.Proof, perr error) proofCheck {
	var c proofCheck
	no := func(format string, args ...any) proofCheck {
		c.Verified, c.Why = false, fmt.Sprintf(format, args...)
		return c
	}
	newest, err := audit.OpenCheckpointKeys(signed, keys)
	if err != nil {
		return no("the newest checkpoint: %v", err)
	}
	c.Size, c.Root = newest.Size, b64(newest.Root)
	if perr != nil {
		var ge *gatehouse.Error
		if errors.As(perr, &ge) && ge.Code != gatehouse.EINTERNAL {
			return no("the admin API gave no proof: %s", ge.Message)
		}
		return no("the admin API gave no proof (internal error: the server log has the details; gatehouse audit verify checks the whole log)")
	}
	cp := newest
	if !bytes.Equal([]byte(p.Checkpoint), signed) {
		pcp, err := audit.OpenCheckpointKeys([]byte(p.Checkpoint), keys)
		if err != nil {
			return no("the proof's checkpoint: %v", err)
		}
		if pcp.Size < newest.Size {
			return no("the proof is against a checkpoint of size %d, older than the newest (size %d)", pcp.Size, newest.Size)
		}
		cp = pcp // signed since the newest was read
		c.Size, c.Root = cp.Size, b64(cp.Root)
	}
	if p.Index != index {
		return no("the proof is of entry %d, not %d", p.Index, index)
	}
	if p.TreeSize != cp.Size || !bytes.Equal(p.RootHash, cp.Root) {
		return no("the proof's tree size or root hash is not the checkpoint's")
	}
	if index >= cp.Size {
		return no("entry %d is not covered by the checkpoint (size %d)", index, cp.Size)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(p.Entry)
	if !bytes.Equal(leaf, p.LeafHash) {
		return no("the proof's leaf hash is not the hash of the entry it proves")
	}
	c.Hashes = len(p.Hashes)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf, p.Hashes, cp.Root); err != nil {
		return no("the inclusion proof does not lead to the checkpoint's root: %v", err)
	}
	var e gatehouse.Event
	if err := json.Unmarshal(p.Entry, &e); err != nil {
		return no("the entry proven is not an event: %v", err)
	}
	a, _ := json.Marshal(e)
	b, _ := json.Marshal(listed)
	if !bytes.Equal(a, b) {
		return no("the entry the log lists is not the entry proven (altered after it was written?)")
	}
	c.Verified = true
	return c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
