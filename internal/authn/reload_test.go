package authn_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/secrets"
	secretspg "github.com/gatehouse/gatehouse/internal/secrets/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// sharedKeyReplicas opens two token services on one sealed store in
// PostgreSQL, as two replicas with the same master key are.
func sharedKeyReplicas(t *testing.T, clock gatehouse.Clock) (a, b *authn.Tokens, blobB *secrets.Blob) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	mk, err := secrets.ParseMasterKey(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	st, err := secretspg.Open(t.Context(), pgtest.MustCreateDatabase(t), mk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	open := func(blob *secrets.Blob) *authn.Tokens {
		tok, err := authn.NewTokens(context.Background(), authn.TokensConfig{Issuer: "https://gatehouse.test", Keys: blob, Clock: clock, Rotation: 180 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a = open(&secrets.Blob{W: st, Name: secrets.SigningKeys})
	blobB = &secrets.Blob{W: st, Name: secrets.SigningKeys}
	b = open(blobB)
	return a, b, blobB
}

func activeKID(t *authn.Tokens) string {
	for _, k := range t.SigningKeys() {
		if k.Active {
			return k.KID
		}
	}
	return ""
}

// TestSigningKeysFollowRotationElsewhere: after replica A rotates, a token
// A signs with the new key verifies on B at once (the unknown kid makes B
// reload), B's JWKS and signing key follow, and
// B's own rotation or scheduled rotation made on stale keys lands on top
// of A's instead of failing its check-and-set.
func TestSigningKeysFollowRotationElsewhere(t *testing.T) {
	ctx := t.Context()
	clock := gatehouse.NewFakeClock(time.Now())
	a, b, blobB := sharedKeyReplicas(t, clock)
	if activeKID(a) != activeKID(b) {
		t.Fatalf("replicas start on different keys: %s %s", activeKID(a), activeKID(b))
	}
	p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, "")
	old, _, _ := a.Issue(p, []string{"a"})

	if err := a.Rotate(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := a.Issue(p, []string{"a"})
	if _, err := b.Authenticate(ctx, fresh); err != nil {
		t.Fatalf("A's token under its new key on B: %v", err)
	}
	if _, err := b.Authenticate(ctx, old); err != nil {
		t.Fatalf("A's token under the retired key on B: %v", err)
	}
	if activeKID(b) != activeKID(a) || !strings.Contains(string(b.JWKS()), activeKID(a)) || len(b.SigningKeys()) != 2 {
		t.Fatalf("B after reloading: %+v", b.SigningKeys())
	}
	if v, where := blobB.Stored(); v != 2 || !strings.Contains(where, "sealed in PostgreSQL") {
		t.Errorf("B's view of the stored keys: version %d, %q", v, where)
	}

	// A rotates again; B, unaware, is asked to rotate: on top of A's.
	if err := a.Rotate(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.Rotate(ctx, "manual"); err != nil {
		t.Fatalf("B's rotation on stale keys: %v", err)
	}
	if n := len(b.SigningKeys()); n != 4 {
		t.Errorf("%d keys after A's second and B's rotation, want 4", n)
	}
	if changed, err := a.Reload(ctx); err != nil || !changed || activeKID(a) != activeKID(b) {
		t.Errorf("A reloading B's rotation: %v %v; %s vs %s", changed, err, activeKID(a), activeKID(b))
	}
	if changed, err := a.Reload(ctx); err != nil || changed {
		t.Errorf("a second reload with nothing new: %v %v", changed, err)
	}

	// Both due on schedule: the first rotates, the second adopts its key.
	clock.Advance(181 * 24 * time.Hour)
	if rotated, err := a.RotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("A on schedule: %v %v", rotated, err)
	}
	if _, err := b.RotateIfDue(ctx); err != nil {
		t.Fatalf("B on schedule after A: %v", err)
	}
	if activeKID(a) != activeKID(b) {
		t.Errorf("after both scheduled rotations A signs with %s, B with %s", activeKID(a), activeKID(b))
	}

	// Tokens with unknown kids make at most one fruitless reload each 250 ms.
	if err := a.Rotate(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	forged := strings.Split(fresh, ".")
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"nope","typ":"JWT"}`))
	for range 50 {
		if _, err := b.Authenticate(ctx, hdr+"."+forged[1]+"."+forged[2]); err == nil {
			t.Fatal("a token with an unknown kid verified")
		}
	}
	if activeKID(b) != activeKID(a) {
		t.Errorf("B did not reload on the first unknown kid")
	}
	// That reload found A's rotation, so it does not count; the next
	// unknown kid reloads (and finds nothing), then none for 250 ms.
	b.Authenticate(ctx, hdr+"."+forged[1]+"."+forged[2])
	before := activeKID(b)
	if err := a.Rotate(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, hdr+"."+forged[1]+"."+forged[2]); err == nil || activeKID(b) != before {
		t.Errorf("a second reload within the same second: active %s, before %s", activeKID(b), before)
	}
}

// TestUnknownKidCallersWaitForTheReload: many requests arriving together
// with a token of a key another replica just made all verify: one
// reloads, the others wait for it instead of failing.
func TestUnknownKidCallersWaitForTheReload(t *testing.T) {
	ctx := t.Context()
	a, b, _ := sharedKeyReplicas(t, gatehouse.SystemClock{})
	p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, "")
	for round := range 3 {
		if err := a.Rotate(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		tok, _, _ := a.Issue(p, []string{"a"})
		errs := make(chan error, 32)
		for range cap(errs) {
			go func() {
				_, err := b.Authenticate(ctx, tok)
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Errorf("round %d: a concurrent request with the new key's token: %v", round, err)
			}
		}
	}
}
