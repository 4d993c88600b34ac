package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDSyncUnsupported: the errors by which pwritev2 refuses RWF_DSYNC
// itself make the log fall back to write and fdatasync; any other error
// (a full disk, an I/O error) fails the commit.
func TestDSyncUnsupported(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.ENOSYS, true},
		{syscall.EOPNOTSUPP, true},
		{syscall.EINVAL, true},
		{fmt.Errorf("pwritev2: %w", syscall.EOPNOTSUPP), true},
		{syscall.ENOSPC, false},
		{syscall.EIO, false},
		{io.ErrShortWrite, false},
	} {
		if got := dsyncUnsupported(tc.err); got != tc.want {
			t.Errorf("dsyncUnsupported(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestWriteDSync writes at the file's offset and advances it, as
// f.Write does, and reports what it wrote.
func TestWriteDSync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("head:")); err != nil {
		t.Fatal(err)
	}
	n, err := writeDSync(f, []byte("event"))
	if err != nil || n != 5 {
		t.Fatalf("writeDSync: %d %v", n, err)
	}
	if _, err := f.Write([]byte(":tail")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f.Name())
	if string(got) != "head:event:tail" {
		t.Fatalf("file holds %q", got)
	}
}
