package authn

import (
	"bytes"
	"context"
	"testing"
)

// TestTOTPSealVersions: a TOTP secret sealed before a pepper rotation
// opens after it; one sealed after is under the newest version (and
// says so); a replica that has not seen that version opens it after its
// refresh; a version-1 seal whose random nonce begins like a marker
// still opens; a tampered seal does not.
func TestTOTPSealVersions(t *testing.T) {
	ctx := context.Background()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	p, err := NewPepper(PepperKey{Version: 1, Key: k1})
	if err != nil {
		t.Fatal(err)
	}
	u := &Users{peppers: p}
	old, err := u.seal("OLDSECRET")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Set(PepperKey{Version: 1, Key: k1}, PepperKey{Version: 2, Key: k2}); err != nil {
		t.Fatal(err)
	}
	fresh, err := u.seal("NEWSECRET")
	if err != nil {
		t.Fatal(err)
	}
	if fresh[0] != hashMarker || fresh[1] != 2 {
		t.Fatalf("sealed after the rotation: %x…, want the version 2 marker", fresh[:2])
	}
	for want, sealed := range map[string][]byte{"OLDSECRET": old, "NEWSECRET": fresh} {
		if got, err := u.open(ctx, sealed); err != nil || got != want {
			t.Fatalf("open = %q, %v; want %q", got, err, want)
		}
	}

	stale, _ := NewPepper(PepperKey{Version: 1, Key: k1})
	stale.SetRefresh(func(context.Context) error {
		return stale.Set(PepperKey{Version: 1, Key: k1}, PepperKey{Version: 2, Key: k2})
	})
	if got, err := (&Users{peppers: stale}).open(ctx, fresh); err != nil || got != "NEWSECRET" {
		t.Fatalf("stale replica: %q, %v", got, err)
	}

	v1 := &Users{peppers: versionOne(k1)}
	var lookalike []byte
	for range 20000 {
		s, err := v1.seal("LOOKALIKE")
		if err != nil {
			t.Fatal(err)
		}
		if s[0] == hashMarker && s[1] >= 2 && s[1] < 0x80 {
			lookalike = s
			break
		}
	}
	if lookalike == nil {
		t.Fatal("no version-1 seal whose nonce looks like a marker in 20000 tries")
	}
	if got, err := u.open(ctx, lookalike); err != nil || got != "LOOKALIKE" {
		t.Fatalf("version-1 seal that looks marked: %q, %v", got, err)
	}

	tampered := bytes.Clone(fresh)
	tampered[len(tampered)-1] ^= 1
	for _, bad := range [][]byte{tampered, fresh[:3], nil, {hashMarker}} {
		if _, err := u.open(ctx, bad); err == nil {
			t.Fatalf("opened %x", bad)
		}
	}
}
