// Package desttest is the contract suite every backup.Destination passes:
// the directory and S3 destinations run the same tests.
package desttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/backup"
)

// Run runs the suite on destinations made by open, a fresh empty one for
// each test.
func Run(t *testing.T, open func(t *testing.T) backup.Destination) {
	ctx := context.Background()
	name := func(i int) string {
		return backup.FileName(time.Date(2026, 1, 2, 3, 4, 5+i, 0, time.UTC).Format("20060102T150405.000Z") + "-abcdef")
	}
	t.Run("put, open, list, delete", func(t *testing.T) {
		d := open(t)
		if list, err := d.List(ctx); err != nil || len(list) != 0 {
			t.Fatalf("a new destination lists %v, %v", list, err)
		}
		// Larger than one multipart part, to cross part boundaries.
		data := make([]byte, 20<<20+123)
		rand.Read(data)
		if err := d.Put(ctx, name(0), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := d.Put(ctx, name(1), bytes.NewReader([]byte("small"))); err != nil {
			t.Fatal(err)
		}
		r, err := d.Open(ctx, name(0))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (%v), want the %d put", len(got), err, len(data))
		}
		list, err := d.List(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %+v, %v", list, err)
		}
		sizes := map[string]int64{}
		for _, o := range list {
			sizes[o.Name] = o.Size
		}
		if sizes[name(0)] != int64(len(data)) || sizes[name(1)] != 5 {
			t.Errorf("listed sizes %v", sizes)
		}
		if err := d.Delete(ctx, name(0)); err != nil {
			t.Fatal(err)
		}
		if list, _ := d.List(ctx); len(list) != 1 || list[0].Name != name(1) {
			t.Errorf("after delete: %+v", list)
		}
		if _, err := d.Open(ctx, name(0)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open a deleted backup: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("a failed put leaves nothing", func(t *testing.T) {
		d := open(t)
		broken := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), errReader{})
		if err := d.Put(ctx, name(2), broken); err == nil {
			t.Fatal("put from a failing reader succeeded")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := d.Put(cctx, name(3), bytes.NewReader([]byte("x"))); err == nil {
			t.Error("put with a cancelled context succeeded")
		}
		if list, err := d.List(ctx); err != nil || len(list) != 0 {
			t.Errorf("after failed puts: %+v, %v", list, err)
		}
		if _, err := d.Open(ctx, name(2)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open after a failed put: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("names it did not make are refused", func(t *testing.T) {
		d := open(t)
		for _, n := range []string{"../gatehouse.db", "x.age", ""} {
			if _, err := d.Open(ctx, n); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("open %q: %v, want fs.ErrNotExist", n, err)
			}
			if err := d.Delete(ctx, n); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("delete %q: %v, want fs.ErrNotExist", n, err)
			}
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
