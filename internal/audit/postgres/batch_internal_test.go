package postgres

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestBatchWireFormat: a batch's arrays and the statement's other
// parameters are byte for byte what pgx's own encoders send for the same
// values (which PostgreSQL's receive functions read), and each gives the
// elements back as added.
func TestBatchWireFormat(t *testing.T) {
	m := pgtype.NewMap()
	for _, tc := range []struct {
		name  string
		elems [][]byte
	}{
		{"one", [][]byte{[]byte(`{"id":"x"}`)}},
		{"empty element", [][]byte{{}, []byte("a")}},
		{"many", func() [][]byte {
			var es [][]byte
			for i := range 300 {
				es = append(es, []byte(strings.Repeat("e", i)))
			}
			return es
		}()},
		{"binary", [][]byte{{0, 1, 2, 0xff}, bytes.Repeat([]byte{0}, 70000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newByteaArray(0)
			for _, e := range tc.elems {
				a.append(e)
			}
			want, err := m.Encode(pgtype.ByteaArrayOID, pgtype.BinaryFormatCode, pgtype.FlatArray[[]byte](tc.elems), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.wire(); !bytes.Equal(got, want) {
				t.Fatalf("wire format differs from pgx's:\n got %x\nwant %x", got[:min(len(got), 64)], want[:min(len(want), 64)])
			}
			var back [][]byte
			a.each(func(p []byte) { back = append(back, bytes.Clone(p)) })
			if len(back) != len(tc.elems) {
				t.Fatalf("each gave %d elements, added %d", len(back), len(tc.elems))
			}
			for i := range back {
				if !bytes.Equal(back[i], tc.elems[i]) {
					t.Fatalf("element %d: got %q, added %q", i, back[i], tc.elems[i])
				}
			}
		})
	}
	for _, ts := range []time.Time{
		time.Date(2026, 12, 2, 19, 0, 0, 123456789, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 0, 500, time.FixedZone("x", 3600)),
	} {
		want, err := m.Encode(pgtype.TimestamptzOID, pgtype.BinaryFormatCode, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := timestamptzWire(ts); !bytes.Equal(got, want) {
			t.Errorf("timestamptz %v: got %x, pgx %x", ts, got, want)
		}
	}
	for _, n := range []int{1, 64, maxPending} {
		want, err := m.Encode(pgtype.Int4OID, pgtype.BinaryFormatCode, int32(n), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := int4Wire(n); !bytes.Equal(got, want) {
			t.Errorf("int4 %d: got %x, pgx %x", n, got, want)
		}
	}
}

// TestLeafOfPrefixedBuffer: the SHA-256 of 0x00 || event, which Record
// computes over its encoding buffer, is the RFC 6962 leaf hash.
func TestLeafOfPrefixedBuffer(t *testing.T) {
	for _, p := range []string{"", `{"id":"01J"}`, strings.Repeat("x", 5000)} {
		buf := append([]byte{rfc6962.RFC6962LeafHashPrefix}, p...)
		got := sha256.Sum256(buf)
		if want := rfc6962.DefaultHasher.HashLeaf([]byte(p)); !bytes.Equal(got[:], want) {
			t.Errorf("leaf of %d bytes: %x, RFC 6962 %x", len(p), got, want)
		}
	}
}
