package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
)

// ageMagic begins every age file.
const ageMagic = "age-encryption.org/v1\n"

// staged is a part ready to be written: a file in the staging directory,
// or bytes.
type staged struct {
	Part
	path string
	data []byte
}

func (p *staged) open() (io.ReadCloser, error) {
	if p.path == "" {
		return io.NopCloser(bytes.NewReader(p.data)), nil
	}
	return os.Open(p.path)
}

// hash fills in the part's size and SHA-256.
func (p *staged) hash() error {
	r, err := p.open()
	if err != nil {
		return fmt.Errorf("read part %s: %w", p.Name, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("read part %s: %w", p.Name, err)
	}
	p.Size, p.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// writeArchive streams the signed manifest and the parts, as tar, through
// age to w.
func writeArchive(w io.Writer, recipients []age.Recipient, signed []byte, parts []*staged, at time.Time) error {
	aw, err := age.Encrypt(w, recipients...)
	if err != nil {
		return fmt.Errorf("encrypt backup: %w", err)
	}
	tw := tar.NewWriter(aw)
	entry := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: at, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	}
	if err := entry(manifestName, int64(len(signed))); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	if _, err := tw.Write(signed); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	for _, p := range parts {
		if err := entry(p.Name, p.Size); err != nil {
			return fmt.Errorf("write backup part %s: %w", p.Name, err)
		}
		r, err := p.open()
		if err != nil {
			return fmt.Errorf("read part %s: %w", p.Name, err)
		}
		// A part that changed since it was hashed fails here (tar refuses
		// a size mismatch), never as a wrong hash found at restore.
		_, err = io.Copy(tw, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("write backup part %s: %w", p.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("encrypt backup: %w", err)
	}
	return nil
}

// archive is a backup being read: its manifest is checked, its parts not
// yet.
type archive struct {
	tr       *tar.Reader
	plain    io.Reader // the decrypted stream under tr
	Manifest *Manifest
}

// openArchive decrypts r and checks the manifest against t.
func openArchive(r io.Reader, ids []age.Identity, t Trust) (*archive, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(len(ageMagic)); string(head) != ageMagic {
		return nil, &Error{Kind: ErrNotBackup, Detail: "it does not begin with an age header"}
	}
	if len(ids) == 0 {
		return nil, &Error{Kind: ErrWrongIdentity, Detail: "no backup identity is configured (backup.identity_file)"}
	}
	plain, err := age.Decrypt(br, ids...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, &Error{Kind: ErrWrongIdentity, Detail: "it was encrypted to other recipients (or its header was changed)"}
		}
		return nil, damaged("age header: " + firstLine(err))
	}
	a := &archive{tr: tar.NewReader(plain), plain: plain}
	h, err := a.tr.Next()
	if err != nil {
		return nil, readErr(err, "the manifest")
	}
	if h.Name != manifestName || h.Size > maxManifest {
		return nil, damaged("the first entry is not the manifest")
	}
	signed, err := io.ReadAll(a.tr)
	if err != nil {
		return nil, readErr(err, "the manifest")
	}
	if a.Manifest, err = openManifest(signed, t); err != nil {
		return nil, err
	}
	return a, nil
}

// extract writes every part to the path place gives it (mode 0600, parent
// directories 0700), checking that each is listed in the manifest, once,
// with its size and hash, and that none is missing; and reads the
// encrypted stream to its authenticated end. With durable set each file is
// fsynced. place returns "" for a part that is only checked.
func (a *archive) extract(ctx context.Context, place func(name string) string, durable bool) error {
	want := make(map[string]Part, len(a.Manifest.Parts))
	for _, p := range a.Manifest.Parts {
		want[p.Name] = p
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := a.tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readErr(err, "the next part")
		}
		p, ok := want[h.Name]
		if !ok {
			return damaged(fmt.Sprintf("entry %q is not listed in the manifest (or is listed twice)", h.Name))
		}
		delete(want, h.Name)
		if h.Typeflag != tar.TypeReg || h.Size != p.Size {
			return damaged(fmt.Sprintf("part %s is not the %d-byte file the manifest lists", p.Name, p.Size))
		}
		if err := writePart(a.tr, p, place(p.Name), durable); err != nil {
			return err
		}
	}
	if len(want) > 0 {
		missing := slices.Sorted(maps.Keys(want))
		return damaged(fmt.Sprintf("part %s is missing: the backup was cut short", missing[0]))
	}
	// The tar end is not the end of the age stream: reading on
	// authenticates its last chunk.
	if _, err := io.Copy(io.Discard, a.plain); err != nil {
		return readErr(err, "the end of the backup")
	}
	return nil
}

// writePart copies part p from r to path (or only hashes it when path is
// "") and checks its hash.
func writePart(r io.Reader, p Part, path string, durable bool) error {
	h := sha256.New()
	w := io.Writer(h)
	var f *os.File
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("restore part %s: %w", p.Name, err)
		}
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("restore part %s: %w", p.Name, err)
		}
		defer f.Close()
		w = io.MultiWriter(f, h)
	}
	if _, err := io.Copy(w, r); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("restore part %s: %w", p.Name, err)
		}
		return readErr(err, "part "+p.Name)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return damaged(fmt.Sprintf("part %s has SHA-256 %s, the manifest says %s", p.Name, got, p.SHA256))
	}
	if f == nil {
		return nil
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("restore part %s: %w", p.Name, err)
		}
	}
	return f.Close()
}

// readErr describes a failure to read the decrypted stream: age failing a
// chunk's authentication, or the tar framing broken.
func readErr(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return damaged("it ends before " + what + " (cut short)")
	}
	return damaged("reading " + what + ": " + firstLine(err))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
