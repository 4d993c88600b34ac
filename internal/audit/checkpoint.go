package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const (
	signerKeyFile   = "log.key"
	verifierKeyFile = "log.pub"
	checkpointsFile = "checkpoints"
	prunedFile      = "pruned"
	prunedMagic     = "GHAUDPRN"
)

// Checkpoint is the parsed body of a C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root_hash"`
}

// Marshal returns the checkpoint body: origin, size and base64 root, one per
// line.
func (c Checkpoint) Marshal() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// ParseCheckpoint parses a checkpoint body (the text of a signed note).
// Extension lines after the root are ignored.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, errors.New("parse checkpoint: too few lines")
	}
	if lines[0] == "" {
		return Checkpoint{}, errors.New("parse checkpoint: empty origin")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: bad size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != hashLen {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: bad root hash %q", lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// OpenCheckpoint verifies a signed checkpoint note with the verifier key
// vkey and returns its parsed body.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("parse verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint note: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint origin %q does not match key name %q", c.Origin, v.Name())
	}
	return c, nil
}

// loadOrCreateKey reads the note signer key in dir, generating it (named
// origin) on first use. It returns the signer and the verifier key text.
func loadOrCreateKey(dir, origin string) (note.Signer, string, error) {
	kpath := filepath.Join(dir, signerKeyFile)
	b, err := os.ReadFile(kpath)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, "", fmt.Errorf("generate audit signing key: %w", err)
		}
		if err := writeFileSync(kpath, []byte(skey+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("write audit signing key: %w", err)
		}
		if err := writeFileSync(filepath.Join(dir, verifierKeyFile), []byte(vkey+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("write audit verifier key: %w", err)
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, "", fmt.Errorf("read audit signing key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, "", fmt.Errorf("parse audit signing key: %w", err)
	}
	if s.Name() != origin {
		return nil, "", fmt.Errorf("audit origin %q differs from signing key name %q; keep the origin or move the old log aside", origin, s.Name())
	}
	vb, err := os.ReadFile(filepath.Join(dir, verifierKeyFile))
	if err != nil {
		return nil, "", fmt.Errorf("read audit verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(vb))
	v, err := note.NewVerifier(vkey)
	if err != nil || v.Name() != s.Name() || v.KeyHash() != s.KeyHash() {
		return nil, "", fmt.Errorf("audit verifier key %s does not match the signing key", verifierKeyFile)
	}
	return s, vkey, nil
}

// writeFileSync writes a file atomically (temp file, fsync, rename, fsync dir).
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// storedCheckpoint is one frame of the checkpoints file.
type storedCheckpoint struct {
	Seq    int    // position in the file, from 0
	Offset int64  // byte offset of the frame
	Signed []byte // the signed note
}

// readCheckpoints reads every frame of the checkpoints file. A torn final
// frame (one that runs past the end of the file, or, when lenient, a
// complete final frame with a bad checksum) is reported through torn (its
// offset) and not returned.
func readCheckpoints(dir string, lenient bool) (cps []storedCheckpoint, torn int64, err error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, -1, fmt.Errorf("read audit checkpoints: %w", err)
	}
	pos := 0
	for pos < len(b) {
		rest := b[pos:]
		if len(rest) < frameHeaderLn {
			return cps, int64(pos), nil
		}
		n := int(binary.BigEndian.Uint32(rest[:4]))
		if n == 0 || n > 64<<10 || frameHeaderLn+n > len(rest) {
			if frameHeaderLn+n > len(rest) {
				return cps, int64(pos), nil
			}
			return nil, -1, fmt.Errorf("checkpoint %d: bad frame length %d", len(cps), n)
		}
		body := rest[frameHeaderLn : frameHeaderLn+n]
		if checksum(body) != binary.BigEndian.Uint32(rest[4:8]) {
			if lenient && frameHeaderLn+n == len(rest) {
				return cps, int64(pos), nil
			}
			return nil, -1, fmt.Errorf("checkpoint %d: frame checksum mismatch", len(cps))
		}
		cps = append(cps, storedCheckpoint{Seq: len(cps), Offset: int64(pos), Signed: bytes.Clone(body)})
		pos += frameHeaderLn + n
	}
	return cps, -1, nil
}

// encodePrune encodes the compact range of the pruned prefix.
func encodePrune(p prefixState) []byte {
	b := []byte(prunedMagic)
	b = binary.BigEndian.AppendUint64(b, p.begin)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.hashes)))
	for _, h := range p.hashes {
		b = append(b, h...)
	}
	return binary.BigEndian.AppendUint32(b, checksum(b))
}

// readPrune reads the pruned-prefix file; no file means nothing was pruned.
func readPrune(dir string) (prefixState, error) {
	b, err := os.ReadFile(filepath.Join(dir, prunedFile))
	if errors.Is(err, os.ErrNotExist) {
		return prefixState{}, nil
	}
	if err != nil {
		return prefixState{}, fmt.Errorf("read audit prune state: %w", err)
	}
	if len(b) < 24 || string(b[:8]) != prunedMagic || checksum(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return prefixState{}, errors.New("read audit prune state: corrupt file")
	}
	p := prefixState{begin: binary.BigEndian.Uint64(b[8:16])}
	n := int(binary.BigEndian.Uint32(b[16:20]))
	if len(b) != 24+n*hashLen {
		return prefixState{}, errors.New("read audit prune state: corrupt file")
	}
	p.ids = compactIDs(p.begin)
	if len(p.ids) != n {
		return prefixState{}, fmt.Errorf("read audit prune state: %d hashes for %d entries", n, p.begin)
	}
	for i := 0; i < n; i++ {
		p.hashes = append(p.hashes, bytes.Clone(b[20+i*hashLen:20+(i+1)*hashLen]))
	}
	return p, nil
}

// checkpoint signs and stores a checkpoint of the current tree if it grew
// (or if force is set and none exists yet). It refuses to write one that is
// not consistent with the previous checkpoint.
func (l *Log) checkpoint(force bool) ([]byte, error) {
	w := &l.w
	if w.haveCP && w.lastCPSize == w.size {
		return l.Checkpoint(), nil
	}
	if !w.haveCP && w.size == 0 && !force {
		return nil, nil
	}
	root, err := l.head()
	if err != nil {
		return nil, err
	}
	cp := Checkpoint{Origin: l.cfg.Origin, Size: w.size, Root: root}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.key.Load().Signer)
	if err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	if err := l.storeCheckpoint(signed, cp); err != nil {
		return nil, err
	}
	return signed, nil
}

// head makes the tree durable and returns its root, after checking that
// it is consistent with the latest checkpoint.
func (l *Log) head() ([]byte, error) {
	w := &l.w
	if err := l.syncData(); err != nil {
		return nil, err
	}
	if err := w.idx.Sync(); err != nil {
		return nil, fmt.Errorf("sync audit index %d: %w", w.segStart, err)
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if w.size > 0 {
		r, err := w.rng.GetRootHash(nil)
		if err != nil {
			return nil, fmt.Errorf("audit root: %w", err)
		}
		root = r
	}
	if w.haveCP {
		if w.size < w.lastCPSize {
			return nil, fmt.Errorf("audit tree shrank from %d to %d", w.lastCPSize, w.size)
		}
		p, err := l.view().consistency(w.lastCPSize, w.size)
		if err != nil {
			return nil, fmt.Errorf("audit consistency proof %d→%d: %w", w.lastCPSize, w.size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, w.lastCPSize, w.size, p, w.lastCPRoot, root); err != nil {
			return nil, fmt.Errorf("refusing checkpoint: tree of size %d is not consistent with checkpoint of size %d: %w", w.size, w.lastCPSize, err)
		}
	}
	return root, nil
}

// storeCheckpoint appends a signed checkpoint to the checkpoints file and
// fsyncs it.
func (l *Log) storeCheckpoint(signed []byte, cp Checkpoint) error {
	w := &l.w
	frame := appendFrame(nil, signed)
	if _, err := w.cp.Write(frame); err != nil {
		return fmt.Errorf("write audit checkpoint: %w", err)
	}
	if err := w.cp.Sync(); err != nil {
		return fmt.Errorf("sync audit checkpoint: %w", err)
	}
	w.haveCP, w.lastCPSize, w.lastCPRoot = true, cp.Size, cp.Root
	l.mu.Lock()
	l.latest, l.latestCP = signed, cp
	l.mu.Unlock()
	l.checkpointAt.Store(l.clock.Now().UnixNano())
	l.logger.Debug("audit checkpoint", logKeySize, cp.Size)
	return nil
}

// ErrSameKey is returned by RotateKey when the key given already signs
// the log.
var ErrSameKey = errors.New("the audit log is already signed by this key")

// RotateKey hands the log over to key next: it commits what is queued,
// writes the hand-over checkpoint of the current tree signed by the key
// in use and by next, and from then on signs with next (checkpoints and
// report signatures). log.pub then holds next's verifier key. next must
// be named as the log's origin. It is safe for concurrent use.
func (l *Log) RotateKey(ctx context.Context, next *Key) (HandOver, error) {
	var ho HandOver
	var herr error
	if err := l.do(ctx, func() { ho, herr = l.handOver(next) }); err != nil {
		return ho, err
	}
	return ho, herr
}

// handOver runs on the writer goroutine (or in Open before it starts).
func (l *Log) handOver(next *Key) (HandOver, error) {
	cur := l.key.Load()
	if next == nil || next.Signer == nil {
		return HandOver{}, errors.New("rotate audit key: no new key")
	}
	if next.VerifierKey == cur.VerifierKey {
		return HandOver{}, ErrSameKey
	}
	root, err := l.head()
	if err != nil {
		return HandOver{}, fmt.Errorf("rotate audit key: %w", err)
	}
	size := l.w.size
	signed, err := SignHandOver(cur, next, size, root)
	if err != nil {
		return HandOver{}, err
	}
	if err := l.storeCheckpoint(signed, Checkpoint{Origin: l.cfg.Origin, Size: size, Root: root}); err != nil {
		return HandOver{}, fmt.Errorf("rotate audit key: %w", err)
	}
	// The hand-over is durable: only next may sign from here on.
	l.key.Store(next)
	ho := HandOver{Size: size, From: cur.VerifierKey, To: next.VerifierKey, Signed: signed}
	l.logger.Info("audit key handed over", logKeySize, size, "from", cur.String(), "to", next.String())
	if err := writeFileSync(filepath.Join(l.dir, verifierKeyFile), []byte(next.VerifierKey+"\n"), 0o600); err != nil {
		// Open finds the hand-over and writes it again.
		return ho, fmt.Errorf("rotate audit key: write %s: %w", verifierKeyFile, err)
	}
	return ho, nil
}

// adoptKey chooses, at Open, the key that signs next: the log's key is
// the one in log.pub, or the one the last hand-over checkpoint
// introduced (a crash may come between the two). active is the key
// given; previous the one it succeeds (or nil). It returns the key in
// use and, when the log is still on previous, the key to hand over to.
func adoptKey(dir string, active, previous *Key, cps []storedCheckpoint) (use, pending *Key, err error) {
	path := filepath.Join(dir, verifierKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := writeFileSync(path, []byte(active.VerifierKey+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("write audit verifier key: %w", err)
		}
		return active, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read audit verifier key: %w", err)
	}
	logKey := strings.TrimSpace(string(b))
	for _, c := range cps {
		if to := handOverTo(c.Signed); to != "" {
			logKey = to
		}
	}
	switch {
	case logKey == active.VerifierKey:
	case previous != nil && logKey == previous.VerifierKey:
		return previous, active, nil
	default:
		return nil, nil, fmt.Errorf("the audit signing key from the secrets provider is not the one of the log in %s (its %s holds another verifier key)", dir, verifierKeyFile)
	}
	if logKey != strings.TrimSpace(string(b)) {
		if err := writeFileSync(path, []byte(logKey+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("write audit verifier key: %w", err)
		}
	}
	return active, nil, nil
}

// logKeys are the verifier keys that may sign the newest checkpoint of
// the log in dir: log.pub's, and those the hand-overs introduced.
func logKeys(dir string, cps []storedCheckpoint) ([]string, error) {
	k, err := ReadVerifierKey(dir)
	if err != nil {
		return nil, err
	}
	keys := []string{k}
	for _, c := range cps {
		if to := handOverTo(c.Signed); to != "" && !slices.Contains(keys, to) {
			keys = append(keys, to)
		}
	}
	return keys, nil
}
