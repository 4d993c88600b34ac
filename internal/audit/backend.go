package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/oklog/ulid/v2"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// This file holds what every storage of the log shares: the file log in
// this package and the PostgreSQL log in audit/postgres. Both hash the
// same canonical event bytes, sign the same checkpoints and are verified
// by the same Checker, so `gatehouse audit verify` means the same thing
// whichever stores the events.

// EncodeEvent appends the canonical JSON bytes of e, the bytes that are
// stored and hashed into the tree, to dst.
func EncodeEvent(dst []byte, e *gatehouse.Event) ([]byte, error) { return appendEvent(dst, e) }

// IDSource hands out event IDs: ULIDs, monotonic within a process. It is
// safe for concurrent use; the zero value is not usable, call NewIDSource.
type IDSource struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	id      ulid.ULID // under mu: the entropy is read into it, not into a new array each time
}

// NewIDSource returns an IDSource.
func NewIDSource() *IDSource { return &IDSource{entropy: ulid.Monotonic(rand.Reader, 0)} }

// New returns a fresh ID for an event at t.
func (s *IDSource) New(t time.Time) string {
	ms := ulid.Timestamp(t)
	var text [ulid.EncodedSize]byte
	s.mu.Lock()
	err := s.id.SetTime(ms)
	if err == nil {
		err = s.entropy.MonotonicRead(ms, s.id[6:])
	}
	if err != nil {
		// Monotonic entropy overflows only after 2^80 IDs in one
		// millisecond; fall back to fresh randomness.
		s.id = ulid.MustNew(ms, rand.Reader)
	}
	_ = s.id.MarshalTextTo(text[:]) // cannot fail: text has the encoded size
	s.mu.Unlock()
	return string(text[:])
}

// Fill sets e's Time (from clock) and ID when they are empty, and makes
// the time UTC, as every log does before encoding an event.
func (s *IDSource) Fill(e *gatehouse.Event, clock gatehouse.Clock) {
	if e.Time.IsZero() {
		e.Time = clock.Now()
	}
	e.Time = e.Time.UTC()
	if e.ID == "" {
		e.ID = s.New(e.Time)
	}
}

// LoadOrCreateSigner reads the checkpoint signing key kept in dir (log.key,
// with its verifier key in log.pub), generating both, named origin, on
// first use. It returns the signer and the verifier key text.
func LoadOrCreateSigner(dir, origin string) (note.Signer, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create audit key dir: %w", err)
	}
	return loadOrCreateKey(dir, origin)
}

// SignCheckpoint signs a checkpoint of the tree of size entries with root
// hash root, and returns the signed note.
func SignCheckpoint(s note.Signer, size uint64, root []byte) ([]byte, error) {
	cp := Checkpoint{Origin: s.Name(), Size: size, Root: root}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, s)
	if err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	return signed, nil
}

// NewRange returns an empty compact range of RFC 6962 hashes starting at
// begin, or, given the hashes of the compact range [0, begin), one
// continuing from there.
func NewRange(begin uint64, hashes [][]byte) (*compact.Range, error) {
	f := newRangeFactory()
	if len(hashes) == 0 && begin == 0 {
		return f.NewEmptyRange(0), nil
	}
	r, err := f.NewRange(0, begin, cloneHashes(hashes))
	if err != nil {
		return nil, fmt.Errorf("audit compact range [0, %d): %w", begin, err)
	}
	return r, nil
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h)
	}
	return out
}

// Checker recomputes a log's Merkle tree leaf by leaf and checks it against
// the log's signed checkpoints as it grows: their signatures and order
// first (NewChecker), then the root at each checkpoint's size (Append),
// then that no checkpoint covers more than the log holds (Finish). Errors
// are *VerifyError values. A Checker is not safe for concurrent use.
type Checker struct {
	targets  []target
	ti       int
	lastGood uint64
	begin    uint64
	rng      *compact.Range
	// Result accumulates the verification summary; storages add their own
	// fields (Bytes, TornTail, RetainedSince) before Finish.
	Result VerifyResult
}

// NewChecker checks the signatures, origin and order of checkpoints (the
// log's stored checkpoints, oldest first) with the verifier key vkey, and
// of external (a checkpoint saved elsewhere, or nil). The tree is
// recomputed from entry begin on, the pruned prefix [0, begin) standing as
// the compact range prefix. Checkpoints of trees smaller than begin are
// counted as unchecked.
func NewChecker(vkey string, checkpoints [][]byte, external []byte, begin uint64, prefix [][]byte) (*Checker, error) {
	c := &Checker{begin: begin}
	c.Result.RetainedFrom = begin
	var err error
	if c.rng, err = NewRange(begin, prefix); err != nil {
		return nil, fmt.Errorf("audit verify: prune state: %w", err)
	}
	chain, cps, err := followKeys(vkey, checkpoints)
	if err != nil {
		return nil, err
	}
	c.Result.Keys = chain
	var prev *Checkpoint
	for seq, cp := range cps {
		if prev != nil {
			if cp.Size < prev.Size {
				return nil, cpErr(seq, -1, "tree size %d is smaller than the previous checkpoint's %d (rollback or replaced checkpoint)", cp.Size, prev.Size)
			}
			if cp.Size == prev.Size && !bytes.Equal(cp.Root, prev.Root) {
				return nil, cpErr(seq, -1, "two checkpoints of size %d with different roots (fork)", cp.Size)
			}
		}
		prev = &cps[seq]
		c.Result.LatestCheckpoint = cp.Size
		if cp.Size < begin {
			c.Result.Unchecked++
			continue
		}
		c.targets = append(c.targets, target{seq: seq, size: cp.Size, root: cp.Root})
	}
	if external != nil {
		cp, err := OpenCheckpointKeys(external, ChainKeys(chain))
		if err != nil {
			return nil, cpErr(-2, -1, "%v", err)
		}
		if cp.Size < begin {
			return nil, cpErr(-2, -1, "tree size %d predates the retained log, which begins at entry %d; it cannot be checked", cp.Size, begin)
		}
		c.targets = append(c.targets, target{seq: -2, size: cp.Size, root: cp.Root})
		sort.SliceStable(c.targets, func(i, j int) bool { return c.targets[i].size < c.targets[j].size })
	}
	return c, c.check()
}

// Keys returns the verifier keys of the log's key chain, oldest first.
func (c *Checker) Keys() []string { return ChainKeys(c.Result.Keys) }

// Size is the size of the tree recomputed so far.
func (c *Checker) Size() uint64 { return c.rng.End() }

// Append adds the next leaf hash (visit, if not nil, sees every node hash
// it completes) and checks every checkpoint of the new size.
func (c *Checker) Append(leaf []byte, visit compact.VisitFn) error {
	if err := c.rng.Append(leaf, visit); err != nil {
		return err
	}
	return c.check()
}

// check compares the recomputed root with every target at the current size.
func (c *Checker) check() error {
	for c.ti < len(c.targets) && c.targets[c.ti].size == c.rng.End() {
		t := c.targets[c.ti]
		root, err := c.root()
		if err != nil {
			return err
		}
		if !bytes.Equal(root, t.root) {
			lo := max(c.lastGood, c.begin)
			if t.size > 0 && lo == t.size {
				lo = t.size - 1
			}
			return cpErr(t.seq, int64(lo), "root hash of tree size %d does not match the stored entries; the first altered entry is in [%d, %d)", t.size, lo, t.size)
		}
		if t.seq != -2 {
			c.Result.Checkpoints++
		} else {
			c.Result.ExternalChecked = true
		}
		c.lastGood = t.size
		c.ti++
	}
	return nil
}

func (c *Checker) root() ([]byte, error) {
	if c.rng.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return c.rng.GetRootHash(nil)
}

// Finish fails if a checkpoint covers more entries than were appended (the
// log was truncated), and otherwise completes Result with the tree size
// and root.
func (c *Checker) Finish() (VerifyResult, error) {
	res := c.Result
	res.TreeSize = c.rng.End()
	res.Entries = res.TreeSize - c.begin
	if c.ti < len(c.targets) {
		t := c.targets[c.ti]
		return res, cpErr(t.seq, int64(res.TreeSize), "covers %d entries but the log holds only %d (log truncated)", t.size, res.TreeSize)
	}
	root, err := c.root()
	if err != nil {
		return res, err
	}
	res.RootHash = root
	return res, nil
}

// reportNoteHeader is the first line of a report signature's note text. It
// can never be a checkpoint's origin line followed by a decimal size, so a
// report signature is never mistaken for a checkpoint and the reverse.
const reportNoteHeader = "gatehouse evidence report"

// SignReport signs the SHA-256 of an evidence report with the log's key: a
// signed note whose text is "gatehouse evidence report\nsha256 <hex>\n".
// Only a digest is ever signed, never caller-chosen text.
func SignReport(s note.Signer, sum [32]byte) ([]byte, error) {
	return note.Sign(&note.Note{Text: fmt.Sprintf("%s\nsha256 %x\n", reportNoteHeader, sum)}, s)
}

// OpenReportSignature checks a report signature made by SignReport with
// the verifier key vkey and returns the digest it signs.
func OpenReportSignature(signed []byte, vkey string) ([32]byte, error) {
	var sum [32]byte
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return sum, fmt.Errorf("parse verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return sum, fmt.Errorf("open report signature: %w", err)
	}
	var hexSum string
	if _, err := fmt.Sscanf(n.Text, reportNoteHeader+"\nsha256 %64x\n", &hexSum); err != nil {
		return sum, errors.New("report signature: not a signed report digest")
	}
	if len(hexSum) != 32 || n.Text != fmt.Sprintf("%s\nsha256 %x\n", reportNoteHeader, hexSum) {
		return sum, errors.New("report signature: not a signed report digest")
	}
	copy(sum[:], hexSum)
	return sum, nil
}

// SignReport signs an evidence report's SHA-256 with the log's checkpoint
// key (see the package function SignReport).
func (l *Log) SignReport(sum [32]byte) ([]byte, error) { return SignReport(l.key.Load().Signer, sum) }

// GenerateSignerKey returns a new checkpoint signing key named origin, as
// signed-note private key text (PRIVATE+KEY+…), for a secrets provider
// to keep.
func GenerateSignerKey(origin string) (string, error) {
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", fmt.Errorf("generate audit signing key: %w", err)
	}
	return skey, nil
}

// ParseSignerKey reads a checkpoint signing key (PRIVATE+KEY+…) and
// derives its verifier key text. The key must be named origin. Errors
// never quote the key.
func ParseSignerKey(skey, origin string) (note.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", errors.New("the audit signing key does not parse (want a signed-note key, PRIVATE+KEY+…)")
	}
	if s.Name() != origin {
		return nil, "", fmt.Errorf("audit origin %q differs from signing key name %q; keep the origin or move the old log aside", origin, s.Name())
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg, seed)>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, "", errors.New("the audit signing key does not parse (want a signed-note key, PRIVATE+KEY+…)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("the audit signing key is not an Ed25519 signed-note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("audit verifier key: %w", err)
	}
	return s, vkey, nil
}
