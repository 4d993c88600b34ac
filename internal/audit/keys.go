package audit

// Rotation of the checkpoint key. A new key takes over from the old one
// through a hand-over checkpoint: the checkpoint of the tree at that size,
// whose text names both verifier keys on an extension line and which both
// keys sign (a signed note carries several signatures). Verification
// follows the chain: from a trusted key, a successor is accepted only
// through a hand-over its predecessor signed, and from then on only the
// successor signs. The hand-over is an ordinary checkpoint to any tool
// that ignores extension lines, signed by a key such a tool knows.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// handOverPrefix starts the extension line of a hand-over checkpoint:
// "gatehouse-key-handover <old verifier key> <new verifier key>".
const handOverPrefix = "gatehouse-key-handover "

// Key is a checkpoint signing key: the signer and its verifier key text.
// It never holds the private key's text, so printing it shows nothing
// secret.
type Key struct {
	Signer      note.Signer
	VerifierKey string
}

// String is the key's id, as signatures name it (name+hash).
func (k *Key) String() string {
	if k == nil || k.Signer == nil {
		return "<no key>"
	}
	return KeyID(k.Signer.Name(), k.Signer.KeyHash())
}

// KeyID names a key as its signatures do: name+hash in hex.
func KeyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// vkeyID is the id of verifier key text, or the text itself when it does
// not parse.
func vkeyID(vkey string) string {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return vkey
	}
	return KeyID(v.Name(), v.KeyHash())
}

// KeyRing is the value of the audit-key secret: the active signing key
// and, after a rotation, the key it succeeds, one signed-note private key
// per line (the active one first). The previous key is kept so that
// whichever process next signs for the log can write the hand-over
// checkpoint, even one started after the rotation; it signs nothing else.
// A KeyRing's String and %v never show a private key.
type KeyRing struct {
	Active   *Key
	Previous *Key // nil before the first rotation
	text     []string
}

// String describes the ring by key ids.
func (r KeyRing) String() string {
	if r.Previous == nil {
		return r.Active.String()
	}
	return r.Active.String() + " (succeeds " + r.Previous.String() + ")"
}

// ParseKeyRing reads an audit-key secret: one private key (before any
// rotation), or the active key and the previous one. Every key must be
// named origin. Errors never quote a key.
func ParseKeyRing(text, origin string) (KeyRing, error) {
	var lines []string
	for l := range strings.Lines(text) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 || len(lines) > 2 {
		return KeyRing{}, fmt.Errorf("the audit signing key holds %d keys, want the active key and at most the one it succeeds", len(lines))
	}
	r := KeyRing{text: lines}
	for i, l := range lines {
		s, vkey, err := ParseSignerKey(l, origin)
		if err != nil {
			return KeyRing{}, err
		}
		k := &Key{Signer: s, VerifierKey: vkey}
		if i == 0 {
			r.Active = k
		} else {
			r.Previous = k
		}
	}
	if r.Previous != nil && r.Previous.VerifierKey == r.Active.VerifierKey {
		return KeyRing{}, errors.New("the audit signing key lists the same key twice")
	}
	return r, nil
}

// Marshal returns the secret value of the ring. It holds private keys:
// store it only in a secrets provider.
func (r KeyRing) Marshal() []byte {
	var b bytes.Buffer
	for _, l := range r.text {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Rotate returns the ring after a rotation: a new active key, named as
// the current one, succeeding the current active key (the previous one
// is dropped).
func (r KeyRing) Rotate() (KeyRing, error) {
	if r.Active == nil || len(r.text) == 0 {
		return KeyRing{}, errors.New("rotate audit key: no active key")
	}
	skey, err := GenerateSignerKey(r.Active.Signer.Name())
	if err != nil {
		return KeyRing{}, err
	}
	return ParseKeyRing(skey+"\n"+r.text[0]+"\n", r.Active.Signer.Name())
}

// HandOver is a hand-over checkpoint: at tree size Size, key From handed
// the log over to key To (verifier key texts).
type HandOver struct {
	Size uint64 `json:"tree_size"`
	From string `json:"from_key"`
	To   string `json:"to_key"`
	// Signed is the signed note.
	Signed []byte `json:"-"`
}

// SignHandOver signs the checkpoint of the tree of size entries with
// root hash root as the hand-over from key from to key to: the checkpoint
// text with the extension line naming both verifier keys, signed by both.
func SignHandOver(from, to *Key, size uint64, root []byte) ([]byte, error) {
	if from == nil || to == nil || from.Signer == nil || to.Signer == nil {
		return nil, errors.New("sign audit key hand-over: both keys are required")
	}
	if from.Signer.Name() != to.Signer.Name() {
		return nil, fmt.Errorf("sign audit key hand-over: the new key is named %q, not the origin %q", to.Signer.Name(), from.Signer.Name())
	}
	if from.VerifierKey == to.VerifierKey {
		return nil, errors.New("sign audit key hand-over: the new key is the old one")
	}
	cp := Checkpoint{Origin: from.Signer.Name(), Size: size, Root: root}
	text := string(cp.Marshal()) + handOverPrefix + from.VerifierKey + " " + to.VerifierKey + "\n"
	signed, err := note.Sign(&note.Note{Text: text}, from.Signer, to.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign audit key hand-over: %w", err)
	}
	return signed, nil
}

// noteTextOf returns a signed note's text without checking a signature.
func noteTextOf(signed []byte) (string, error) {
	_, err := note.Open(signed, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if errors.As(err, &unv) {
		return unv.Note.Text, nil
	}
	if err == nil {
		return "", errors.New("note verified without a key")
	}
	return "", fmt.Errorf("not a signed note: %w", err)
}

// parseHandOver finds the hand-over line of a checkpoint's text: ok is
// false for an ordinary checkpoint.
func parseHandOver(text string) (from, to string, ok bool, err error) {
	cp, err := ParseCheckpoint(text)
	if err != nil {
		return "", "", false, err
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines[3:] {
		rest, found := strings.CutPrefix(l, handOverPrefix)
		if !found {
			continue
		}
		if ok {
			return "", "", false, errors.New("two hand-over lines")
		}
		f := strings.Fields(rest)
		if len(f) != 2 || strings.Join(f, " ") != rest {
			return "", "", false, errors.New("malformed hand-over line")
		}
		for _, k := range f {
			v, err := note.NewVerifier(k)
			if err != nil {
				return "", "", false, errors.New("hand-over line names a verifier key that does not parse")
			}
			if v.Name() != cp.Origin {
				return "", "", false, fmt.Errorf("hand-over line names key %q, not of origin %q", v.Name(), cp.Origin)
			}
		}
		if f[0] == f[1] {
			return "", "", false, errors.New("hand-over to the same key")
		}
		from, to, ok = f[0], f[1], true
	}
	return from, to, ok, nil
}

// KeyEpoch is one key of a log's chain of checkpoint keys.
type KeyEpoch struct {
	// VerifierKey is the key's verifier key text (public).
	VerifierKey string `json:"verifier_key"`
	// KeyID is name+hash, as the key's signatures name it.
	KeyID string `json:"key_id"`
	// Since is the tree size of the hand-over checkpoint that introduced
	// the key (0 for the first key), HandOver that checkpoint's position
	// among the log's checkpoints (-1 for the first key).
	Since    uint64 `json:"since_tree_size"`
	HandOver int    `json:"handover_checkpoint"`
}

func newEpoch(vkey string, since uint64, seq int) KeyEpoch {
	return KeyEpoch{VerifierKey: vkey, KeyID: vkeyID(vkey), Since: since, HandOver: seq}
}

// FormatKeyChain is the chain as `audit verify` prints it: each key's id
// and the tree size at its hand-over.
func FormatKeyChain(chain []KeyEpoch) string {
	parts := make([]string, len(chain))
	for i, e := range chain {
		if i == 0 {
			parts[i] = e.KeyID
		} else {
			parts[i] = fmt.Sprintf("%s (hand-over at tree size %d, checkpoint %d)", e.KeyID, e.Since, e.HandOver)
		}
	}
	return strings.Join(parts, " → ")
}

// followKeys checks the signatures of a log's checkpoints (oldest first)
// along the chain of keys from trusted, a verifier key of the log (the
// first one or any later one), and returns the chain and the parsed
// checkpoints. Every checkpoint must be signed by the key in use at its
// position; a hand-over checkpoint by that key and by the key it
// introduces. Keys before trusted are authenticated by the hand-over the
// next key signed, keys after it by the hand-over their predecessor
// signed. Errors are *VerifyError values.
func followKeys(trusted string, checkpoints [][]byte) ([]KeyEpoch, []Checkpoint, error) {
	trusted = strings.TrimSpace(trusted)
	if _, err := note.NewVerifier(trusted); err != nil {
		return nil, nil, fmt.Errorf("audit verify: parse verifier key: %w", err)
	}
	// The chain the hand-overs claim; authenticated by the signature
	// checks below.
	type claim struct {
		seq      int
		from, to string
	}
	var claims []claim
	for seq, signed := range checkpoints {
		text, err := noteTextOf(signed)
		if err != nil {
			return nil, nil, cpErr(seq, -1, "%v", err)
		}
		from, to, ok, err := parseHandOver(text)
		if err != nil {
			return nil, nil, cpErr(seq, -1, "%v", err)
		}
		if ok {
			claims = append(claims, claim{seq, from, to})
		}
	}
	chain := []KeyEpoch{newEpoch(trusted, 0, -1)}
	if len(claims) > 0 {
		chain[0] = newEpoch(claims[0].from, 0, -1)
		for i, c := range claims {
			if i > 0 && c.from != claims[i-1].to {
				return nil, nil, cpErr(c.seq, -1, "hand-over from key %s, but the key in use is %s (introduced at checkpoint %d)", vkeyID(c.from), vkeyID(claims[i-1].to), claims[i-1].seq)
			}
			chain = append(chain, newEpoch(c.to, 0, c.seq))
		}
		found := false
		for _, e := range chain {
			found = found || e.VerifierKey == trusted
		}
		if !found {
			// The trusted key is not in the chain the log claims: hold
			// every checkpoint to the trusted key alone.
			chain, claims = []KeyEpoch{newEpoch(trusted, 0, -1)}, nil
		}
	}
	verifiers := make([]note.Verifier, len(chain))
	for i, e := range chain {
		v, err := note.NewVerifier(e.VerifierKey)
		if err != nil {
			return nil, nil, fmt.Errorf("audit verify: parse verifier key: %w", err)
		}
		verifiers[i] = v
	}
	// keyOf names a signature's key, and where it stands in the chain.
	keyOf := func(s note.Signature, cur int) string {
		id := KeyID(s.Name, s.Hash)
		for i, v := range verifiers {
			if v.Name() == s.Name && v.KeyHash() == s.Hash {
				switch {
				case i < cur:
					return fmt.Sprintf("%s, retired at the hand-over at tree size %d", id, chain[i+1].Since)
				case i > cur:
					return fmt.Sprintf("%s, before the hand-over that introduces it", id)
				}
			}
		}
		return id + ", which no hand-over introduced"
	}
	cps := make([]Checkpoint, len(checkpoints))
	cur, next := 0, 0 // the key in use; the next claim
	for seq, signed := range checkpoints {
		handOver := next < len(claims) && claims[next].seq == seq
		want := []note.Verifier{verifiers[cur]}
		if handOver {
			want = append(want, verifiers[cur+1])
		}
		n, err := note.Open(signed, note.VerifierList(want...))
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &unv):
			var by []string
			for _, s := range unv.Note.UnverifiedSigs {
				by = append(by, keyOf(s, cur))
			}
			if len(by) == 0 {
				return nil, nil, cpErr(seq, -1, "not signed by the log's key (forged or replaced checkpoint)")
			}
			return nil, nil, cpErr(seq, -1, "not signed by the log's key %s but by %s (forged or replaced checkpoint, forged successor key or a hand-over removed)",
				chain[cur].KeyID, strings.Join(by, "; "))
		case err != nil:
			return nil, nil, cpErr(seq, -1, "bad signature: %v", err)
		}
		if handOver {
			signedBy := func(v note.Verifier) bool {
				for _, s := range n.Sigs {
					if s.Name == v.Name() && s.Hash == v.KeyHash() {
						return true
					}
				}
				return false
			}
			if !signedBy(verifiers[cur]) {
				return nil, nil, cpErr(seq, -1, "hand-over to key %s is not signed by %s, the key in use before it: a key cannot introduce itself (forged successor key)", chain[cur+1].KeyID, chain[cur].KeyID)
			}
			if !signedBy(verifiers[cur+1]) {
				return nil, nil, cpErr(seq, -1, "hand-over to key %s is not signed by that key", chain[cur+1].KeyID)
			}
		}
		cp, err := ParseCheckpoint(n.Text)
		if err != nil {
			return nil, nil, cpErr(seq, -1, "%v", err)
		}
		if cp.Origin != verifiers[cur].Name() {
			return nil, nil, cpErr(seq, -1, "origin %q does not match the key name %q", cp.Origin, verifiers[cur].Name())
		}
		cps[seq] = cp
		if handOver {
			cur, next = cur+1, next+1
			chain[cur].Since = cp.Size
		}
	}
	return chain, cps, nil
}

// OpenCheckpointKeys verifies a signed checkpoint note with any of the
// verifier keys vkeys (a log's key chain) and returns its parsed body.
func OpenCheckpointKeys(signed []byte, vkeys []string) (Checkpoint, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("parse verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return Checkpoint{}, errors.New("open checkpoint note: no verifier key")
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var unv *note.UnverifiedNoteError
		if errors.As(err, &unv) {
			return Checkpoint{}, errors.New("not signed by the log's key, nor by any key of its chain (forged or replaced checkpoint)")
		}
		return Checkpoint{}, fmt.Errorf("open checkpoint note: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != vs[0].Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint origin %q does not match key name %q", c.Origin, vs[0].Name())
	}
	return c, nil
}

// KeyChain returns the chain of checkpoint keys of a log from its stored
// checkpoints (oldest first), trusting vkey, a key of the chain: the
// hand-over checkpoints are checked (each signed by the key it hands over
// from and the key it introduces); the others are left to Verify. The
// HandOver positions are among checkpoints.
func KeyChain(vkey string, checkpoints [][]byte) ([]KeyEpoch, error) {
	var hos [][]byte
	var at []int
	for i, c := range checkpoints {
		if IsHandOver(c) {
			hos, at = append(hos, c), append(at, i)
		}
	}
	return HandOverChain(vkey, hos, at)
}

// HandOverChain is KeyChain given only the hand-over checkpoints of a
// log, oldest first, and their positions among its checkpoints.
func HandOverChain(vkey string, hos [][]byte, at []int) ([]KeyEpoch, error) {
	if len(at) != len(hos) {
		return nil, errors.New("audit key chain: a position for each hand-over is required")
	}
	if len(hos) == 0 {
		if _, err := note.NewVerifier(strings.TrimSpace(vkey)); err != nil {
			return nil, fmt.Errorf("parse verifier key: %w", err)
		}
		return []KeyEpoch{newEpoch(strings.TrimSpace(vkey), 0, -1)}, nil
	}
	chain, _, err := followKeys(vkey, hos)
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Checkpoint >= 0 {
			ve.Checkpoint = at[ve.Checkpoint]
		}
		return nil, err
	}
	for i := range chain {
		if chain[i].HandOver >= 0 {
			chain[i].HandOver = at[chain[i].HandOver]
		}
	}
	return chain, nil
}

// KeyChain returns the log's chain of checkpoint keys (see ReadKeyChain).
func (l *Log) KeyChain(ctx context.Context) ([]KeyEpoch, error) { return ReadKeyChain(l.dir) }

// ReadKeyChain returns the key chain of the log in dir, trusting its
// log.pub (see KeyChain).
func ReadKeyChain(dir string) ([]KeyEpoch, error) {
	vkey, err := ReadVerifierKey(dir)
	if err != nil {
		return nil, err
	}
	cps, _, err := readCheckpoints(dir, true)
	if err != nil {
		return nil, err
	}
	signed := make([][]byte, len(cps))
	for i, c := range cps {
		signed[i] = c.Signed
	}
	return KeyChain(vkey, signed)
}

// ChainKeys returns the verifier keys of a chain, oldest first.
func ChainKeys(chain []KeyEpoch) []string {
	out := make([]string, len(chain))
	for i, e := range chain {
		out[i] = e.VerifierKey
	}
	return out
}

// IsHandOver reports whether a signed checkpoint is a hand-over, without
// checking its signatures.
func IsHandOver(signed []byte) bool {
	text, err := noteTextOf(signed)
	if err != nil {
		return false
	}
	_, _, ok, err := parseHandOver(text)
	return ok && err == nil
}

// handOverTo returns the new verifier key of a hand-over checkpoint, or
// "" for an ordinary one; signatures are not checked.
func handOverTo(signed []byte) string {
	text, err := noteTextOf(signed)
	if err != nil {
		return ""
	}
	_, to, ok, err := parseHandOver(text)
	if !ok || err != nil {
		return ""
	}
	return to
}
