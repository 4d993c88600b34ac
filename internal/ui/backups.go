package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/backup"
)

// backupVerifyWindow is how many of the newest audit entries the page
// reads for the last restore test (backup.verify): enough for the
// scheduled ones, bounded so that a large log does not slow the page.
const backupVerifyWindow = 5000

type backupRow struct {
	backup.Info
	Age, Size string
}

// restoreTest is a restore test's result as the page shows it.
type restoreTest struct {
	backup.VerifyResult
	At                   string // when it ran ("" for one just run)
	Ago                  string
	Backup               string
	Duration, RPO        string
	RTOTarget, RPOTarget string
}

type backupsData struct {
	// Configured is false when the server has no backup destination.
	Configured bool
	// NotConfigured is the API's word for it (not a refusal for the role).
	NotConfigured bool
	Backups       []backupRow
	Newest        *backupRow
	// Last is the newest restore test on record (Result, one just run,
	// comes first); LastNote says why there is none.
	Last, Result  *restoreTest
	LastNote      string
	Pruned        []backupRow
	Message, Done string
}

// backupsPage is GET /ui/backups: GET /v1/backups and the newest
// backup.verify audit event.
func backupsPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.renderBackups(w, r, s, http.StatusOK, &backupsData{})
}

func (u *UI) renderBackups(w http.ResponseWriter, r *http.Request, s *session, status int, d *backupsData) error {
	if r.URL.Query().Get("done") == "created" {
		d.Done = "Backup " + r.URL.Query().Get("backup") + " made."
	}
	var list struct {
		Backups []backup.Info `json:"backups"`
	}
	err := u.call(r.Context(), r, http.MethodGet, "/v1/backups", nil, &list)
	switch c := gatehouse.ErrorCode(err); {
	case err == nil:
		d.Configured = true
	case c == gatehouse.ECONFLICT: // no destination: the page says how to set one
		d.NotConfigured = true
		u.render(w, r, s, status, "backups.html", "Backups", d)
		return nil
	case c == gatehouse.EINTERNAL:
		return err
	default:
		if d.Message == "" {
			d.Message = u.errMessage(r, err)
		}
		u.render(w, r, s, max(status, errStatus(err)), "backups.html", "Backups", d)
		return nil
	}
	now := u.cfg.Clock.Now()
	slices.SortStableFunc(list.Backups, func(a, b backup.Info) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, b := range list.Backups {
		d.Backups = append(d.Backups, backupRow{Info: b, Age: formatAge(now, b.CreatedAt), Size: opsSize(b.Size)})
	}
	if len(d.Backups) > 0 {
		d.Newest = &d.Backups[0]
	}
	if d.Result == nil {
		d.Last, d.LastNote = u.lastRestoreTest(r)
	}
	u.render(w, r, s, status, "backups.html", "Backups", d)
	return nil
}

// lastRestoreTest is the newest backup.verify event among the newest
// backupVerifyWindow audit entries (GET /v1/audit/checkpoint for the
// log's size, then GET /v1/audit?type=backup.verify from there), or why
// there is none.
func (u *UI) lastRestoreTest(r *http.Request) (*restoreTest, string) {
	cp, err := u.newestCheckpoint(r)
	if _, api := err.(*gatehouse.Error); api {
		return nil, "The last restore test is not known: " + u.errMessage(r, err)
	}
	if err != nil {
		u.log.ErrorContext(r.Context(), "backups page: audit checkpoint", "err", err)
		return nil, "The last restore test is not known: the audit checkpoint could not be read."
	}
	var from uint64
	if cp.Size > backupVerifyWindow {
		from = cp.Size - backupVerifyWindow
	}
	type entry struct {
		Event struct {
			gatehouse.Event
			Details backup.VerifyResult `json:"details"`
		} `json:"event"`
	}
	var last *entry
	cursor := strconv.FormatUint(from, 10)
	for range 20 { // pages of up to 1000 matches; a window holds 5 at most
		var page struct {
			Entries []entry `json:"entries"`
			Next    string  `json:"next"`
		}
		q := url.Values{"type": {"backup.verify"}, "cursor": {cursor}, "limit": {"1000"}}
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &page); err != nil {
			return nil, "The last restore test is not known: " + u.errMessage(r, err)
		}
		if n := len(page.Entries); n > 0 {
			last = &page.Entries[n-1]
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if last == nil {
		return nil, "No restore test among the newest " + strconv.Itoa(backupVerifyWindow) + " audit entries: run one (the evidence report's backup.restore_tested check reads the whole log)."
	}
	ev := last.Event
	t := restoreResult(ev.Details)
	t.At, t.Ago, t.Backup = ev.Time.UTC().Format("2006-01-02 15:04 UTC"), formatAge(u.cfg.Clock.Now(), ev.Time), ev.Resource
	return t, ""
}

func restoreResult(v backup.VerifyResult) *restoreTest {
	t := &restoreTest{VerifyResult: v, Backup: v.ID,
		Duration: strconv.FormatInt(v.DurationMS, 10) + " ms", RPO: opsDuration(v.RPOSeconds),
		RTOTarget: opsDuration(v.RTOTargetSeconds), RPOTarget: opsDuration(v.RPOTargetSeconds)}
	if t.Backup != "" {
		t.Backup = "backup:" + t.Backup
	}
	return t
}

// createBackup is POST /v1/backups.
func createBackup(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var info backup.Info
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/backups", nil, &info); err != nil {
		return u.backupRefused(w, r, s, err)
	}
	http.Redirect(w, r, "/ui/backups?"+url.Values{"done": {"created"}, "backup": {info.ID}}.Encode(), http.StatusSeeOther)
	return nil
}

// verifyBackup is POST /v1/backups/{id}/verify: a restore test; its
// result is the answer page's.
func verifyBackup(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var res backup.VerifyResult
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/backups/"+url.PathEscape(r.PathValue("id"))+"/verify", nil, &res); err != nil {
		return u.backupRefused(w, r, s, err)
	}
	d := &backupsData{Result: restoreResult(res)}
	d.Last = d.Result
	return u.renderBackups(w, opsNoQuery(r), s, http.StatusOK, d)
}

// pruneBackups is POST /v1/backups/prune (confirmed first: it deletes).
func pruneBackups(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if !u.opsConfirmed(w, r, s, "Confirm the prune", opsConfirmData{
		What:   "Pruning deletes every stored backup older than the retention (backup.retention), keeping the newest; deleted backups cannot be restored.",
		Button: "Yes, delete the backups past retention", Cancel: "/ui/backups",
	}) {
		return nil
	}
	var out struct {
		Deleted []backup.Info `json:"deleted"`
	}
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/backups/prune", nil, &out); err != nil {
		return u.backupRefused(w, r, s, err)
	}
	d := &backupsData{Done: "Prune done: " + strconv.Itoa(len(out.Deleted)) + " backup(s) deleted."}
	now := u.cfg.Clock.Now()
	for _, b := range out.Deleted {
		d.Pruned = append(d.Pruned, backupRow{Info: b, Age: formatAge(now, b.CreatedAt), Size: opsSize(b.Size)})
	}
	return u.renderBackups(w, opsNoQuery(r), s, http.StatusOK, d)
}

// backupRefused shows the backups page with the API's refusal.
func (u *UI) backupRefused(w http.ResponseWriter, r *http.Request, s *session, err error) error {
	if c := gatehouse.ErrorCode(err); c == gatehouse.EINTERNAL || c == gatehouse.ENOTFOUND {
		return err
	}
	return u.renderBackups(w, opsNoQuery(r), s, errStatus(err), &backupsData{Message: u.errMessage(r, err)})
}
