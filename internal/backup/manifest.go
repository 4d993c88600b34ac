package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// manifestHeader is the first line of a manifest's note text. A checkpoint
// note's second line is a decimal tree size, so neither can pass for the
// other although one key signs both.
const manifestHeader = "gatehouse backup manifest v1\n"

// manifestName is the tar entry of the signed manifest, always the first.
const manifestName = "MANIFEST"

// maxManifest bounds the manifest a reader accepts.
const maxManifest = 1 << 20

// Manifest describes one backup. It is signed with the deployment's audit
// checkpoint key.
type Manifest struct {
	ID          string `json:"id"`
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	// signer is the key that signs the manifest (VerifierKey's), set by
	// the one who stages it.
	signer    note.Signer
	CreatedAt time.Time `json:"created_at"`
	Version   string    `json:"gatehouse_version"`
	// Store is the store's driver (sqlite, postgres); AuditBackend where
	// the audit log lives (file, postgres).
	Store        string `json:"store"`
	AuditBackend string `json:"audit_backend"`
	// Checkpoint is the signed audit checkpoint the backup's log ends at
	// (at least, in postgres mode, where the dump may hold newer ones).
	Checkpoint string `json:"audit_checkpoint"`
	AuditSize  uint64 `json:"audit_size"`
	Parts      []Part `json:"parts"`
}

// Part is one entry of a backup besides the manifest.
type Part struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// partName is what a part may be called: restore maps each name to one
// place, so a name outside this set is refused.
var partName = regexp.MustCompile(`^(store/(gatehouse\.db|postgres\.dump)|audit/(checkpoints|pruned|log\.pub|segments/[0-9]{20}\.(seg|idx))|secrets/(server\.secret|pepper-versions|signing-keys\.json|audit-log\.key)|config/gatehouse\.yaml)$`)

// sign returns the manifest as a signed note.
func (m *Manifest) sign(s note.Signer) ([]byte, error) {
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: manifestHeader + string(body) + "\n"}, s)
	if err != nil {
		return nil, fmt.Errorf("sign backup manifest: %w", err)
	}
	return signed, nil
}

// Trust is what a reader holds a backup's manifest to.
type Trust struct {
	// VerifierKey is the key the manifest must be signed with: the live
	// deployment's audit verifier key. Empty accepts the key the manifest
	// names, which proves only that the backup is whole (a restore onto a
	// fresh machine that was given no key).
	VerifierKey string
	// Accepted are further verifier keys of the deployment: the earlier
	// keys of its audit key chain, so that a backup made before an audit
	// key rotation is still its own.
	Accepted []string
	// Origin is the deployment the backup must come from; empty: any.
	Origin string
	// AllowForeign accepts a backup of another deployment (another key or
	// origin), signed by the key it names.
	AllowForeign bool
}

// openManifest checks a signed manifest against t and parses it.
func openManifest(signed []byte, t Trust) (*Manifest, error) {
	text, err := noteText(signed)
	if err != nil {
		return nil, err
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(strings.TrimPrefix(text, manifestHeader)))
	dec.DisallowUnknownFields()
	if !strings.HasPrefix(text, manifestHeader) || dec.Decode(&m) != nil {
		return nil, damaged("the manifest is not a Gatehouse backup manifest v1")
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	own, err := note.NewVerifier(m.VerifierKey)
	if err != nil || own.Name() != m.Origin {
		return nil, damaged("the manifest names a verifier key that is not the origin's")
	}
	// Signed by the key it names: the manifest is whole.
	if _, err := note.Open(signed, note.VerifierList(own)); err != nil {
		return nil, damaged("the manifest's signature does not verify")
	}
	if t.AllowForeign {
		return &m, nil
	}
	if t.Origin != "" && m.Origin != t.Origin {
		return nil, foreign(fmt.Sprintf("it was made by deployment %q, and this is %q", m.Origin, t.Origin))
	}
	if t.VerifierKey != "" && strings.TrimSpace(t.VerifierKey) != m.VerifierKey && !slices.Contains(t.Accepted, m.VerifierKey) {
		return nil, foreign(fmt.Sprintf("it is signed by another key named %q, not this deployment's audit key", m.Origin))
	}
	return &m, nil
}

// noteText returns the text of a signed note without checking signatures.
func noteText(signed []byte) (string, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 || len(signed) > maxManifest {
		return "", damaged("the manifest is not a signed note")
	}
	return string(signed[:i+1]), nil
}

// check validates what a reader relies on before it reads any part.
func (m *Manifest) check() error {
	if !validID(m.ID) || m.Origin == "" || m.CreatedAt.IsZero() {
		return damaged("the manifest lacks an id, origin or time")
	}
	if m.Store != "sqlite" && m.Store != "postgres" || m.AuditBackend != "file" && m.AuditBackend != "postgres" {
		return damaged(fmt.Sprintf("the manifest names store %q and audit backend %q", m.Store, m.AuditBackend))
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if !partName.MatchString(p.Name) || seen[p.Name] || p.Size < 0 || len(p.SHA256) != 64 {
			return damaged(fmt.Sprintf("the manifest lists a bad part %q", p.Name))
		}
		seen[p.Name] = true
	}
	if !seen[storePart(m.Store)] {
		return damaged("the manifest lists no store")
	}
	return nil
}

// storePart is the part holding a store of the given driver.
func storePart(driver string) string {
	if driver == "postgres" {
		return "store/postgres.dump"
	}
	return "store/gatehouse.db"
}

// Errors a reader returns; each is a *Error whose Kind says which.
var (
	// ErrNotBackup: the file is not an age file at all.
	ErrNotBackup = errors.New("not a Gatehouse backup")
	// ErrWrongIdentity: no configured identity opens the file.
	ErrWrongIdentity = errors.New("not encrypted to this backup identity")
	// ErrDamaged: the file was changed, cut short or assembled wrongly.
	ErrDamaged = errors.New("backup damaged or tampered with")
	// ErrForeign: the backup belongs to another deployment.
	ErrForeign = errors.New("backup of another deployment")
)

// Error is why a backup was refused: Kind is one of the Err values above,
// Detail says what exactly.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *Error) Unwrap() error { return e.Kind }

func damaged(detail string) error { return &Error{Kind: ErrDamaged, Detail: detail} }
func foreign(detail string) error { return &Error{Kind: ErrForeign, Detail: detail} }
