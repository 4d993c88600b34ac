package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/backup"
)

// Dir.Put flushes a backup to disk as it writes it, never leaving more than
// a few MiB of it unwritten in the page cache: one fsync of a whole backup
// at the end held up every other fsync on the filesystem for as long as it
// took, the audit log's among them, and with them the gateway's requests
// (BenchmarkBackup1M: 130 ms for 464 MB). The page cache's own count of the
// file's dirty pages (cachestat(2), Linux 6.5) is read while Put writes.
func TestDirPutFlushesAsItWrites(t *testing.T) {
	const (
		size     = 48 << 20
		maxDirty = 4 << 20 // two flushes of 1 MiB, and slack
	)
	dir := backup.Dir{Path: t.TempDir()}
	name := backup.FileName("20260301T120000.000Z-abcdef")
	src := bytes.Repeat([]byte("gatehouse backup bytes\n"), size/23+1)[:size]
	r := &dirtyProbe{t: t, dir: dir.Path, r: bytes.NewReader(src)}
	if err := dir.Put(context.Background(), name, r); err != nil {
		t.Fatal(err)
	}
	// A filesystem that never writes back (tmpfs) keeps every page dirty
	// after an fsync: nothing to measure there.
	if d := dirtyBytes(t, filepath.Join(dir.Path, name)); d != 0 {
		t.Skipf("%d bytes of the file are still dirty after fsync: this filesystem keeps no writeback state", d)
	}
	if r.probes < 10 {
		t.Fatalf("only %d probes of the file while it was written", r.probes)
	}
	if r.max > maxDirty {
		t.Errorf("up to %d MiB of the backup was waiting to be written while Put wrote it, want at most %d MiB: the final fsync has all of it to write, and every fsync of the audit log waits for it", r.max>>20, maxDirty>>20)
	}
	got, err := os.ReadFile(filepath.Join(dir.Path, name))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(src) {
		t.Error("the stored backup differs from what was written")
	}
}

// dirtyProbe reads r, and at every MiB it hands to Put, measures how much
// of the temporary file Put is writing is dirty or under writeback.
type dirtyProbe struct {
	t         *testing.T
	dir       string
	r         io.Reader
	read      int64
	probes    int
	max, last int64
}

func (p *dirtyProbe) Read(b []byte) (int, error) {
	if p.read>>20 > p.last>>20 {
		p.probe()
	}
	n, err := p.r.Read(b)
	p.read += int64(n)
	return n, err
}

func (p *dirtyProbe) probe() {
	p.last = p.read
	tmp, err := filepath.Glob(filepath.Join(p.dir, ".*.tmp"))
	if err != nil || len(tmp) != 1 {
		p.t.Fatalf("want one temporary file in %s, got %q (%v)", p.dir, tmp, err)
	}
	p.probes++
	p.max = max(p.max, dirtyBytes(p.t, tmp[0]))
}

// dirtyBytes is how much of the file at path the page cache holds dirty or
// under writeback.
func dirtyBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Cachestat_t
	err = unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &st, 0)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("cachestat(2) is not available here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return int64(st.Dirty+st.Writeback) * int64(os.Getpagesize())
}
