// Package storetest is the conformance suite every store.Store
// implementation runs: one black-box, table-driven set of cases that pins
// down the documented semantics of the interface, so that the SQLite and
// PostgreSQL drivers cannot drift apart.
//
// Time precision: the suite requires that every time.Time round-trips at
// NANOSECOND precision (both drivers store unix nanoseconds in a 64-bit
// integer), comes back in UTC whatever zone it was written in, and that the
// zero time comes back as the zero time ("unset").
//
// Byte slices and string slices compare by content: nil and empty are
// equal, since the interface gives them no different meaning.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Run runs every conformance case as a subtest of t. Each case calls open
// for a store of its own, which must be empty and already migrated. open
// owns the store's cleanup (typically t.Cleanup(func() { s.Close() })), and
// that cleanup must tolerate a store the suite has already closed itself.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// cases is the whole suite, grouped by the part of the interface it covers.
var cases = []testCase{
	// Keys.
	{"Key/CreateGetRoundTrip", testKeyRoundTrip},
	{"Key/GetMissing", testKeyGetMissing},
	{"Key/CreateDuplicateID", testKeyDuplicate},
	{"Key/ListEmpty", testKeyListEmpty},
	{"Key/ListOrder", testKeyListOrder},
	{"Key/ListPages", testKeyListPages},
	{"Key/RevokeKeepsFirstTime", testKeyRevoke},
	{"Key/RevokeMissing", testKeyRevokeMissing},
	{"Key/Rotate", testKeyRotate},
	{"Key/RotateRefusesRevoked", testKeyRotateRevoked},
	{"Key/RotateRefusesRotated", testKeyRotateRotated},
	{"Key/RotateMissing", testKeyRotateMissing},
	{"Key/RotateIsAtomic", testKeyRotateAtomic},
	{"Key/RotateConcurrent", testKeyRotateConcurrent},

	// Clients.
	{"Client/CreateGetRoundTrip", testClientRoundTrip},
	{"Client/GetMissing", testClientGetMissing},
	{"Client/ListOrder", testClientListOrder},
	{"Client/ListPages", testClientListPages},
	{"Client/RevokeKeepsFirstTime", testClientRevoke},
	{"Client/RevokeMissing", testClientRevokeMissing},
	{"Client/SetSecret", testClientSetSecret},
	{"Client/SetSecretRefusesRevoked", testClientSetSecretRevoked},
	{"Client/SetSecretMissing", testClientSetSecretMissing},

	// Users.
	{"User/CreateGetRoundTrip", testUserRoundTrip},
	{"User/GetMissing", testUserGetMissing},
	{"User/CreateConflict", testUserConflict},
	{"User/ListOrder", testUserListOrder},
	{"User/ListPages", testUserListPages},
	{"User/Update", testUserUpdate},
	{"User/UpdateMissing", testUserUpdateMissing},
	{"User/Delete", testUserDelete},
	{"User/LastAdminKept", testLastAdminKept},
	{"User/LastAdminConcurrent", testLastAdminConcurrent},
	{"User/UpdateNeverLowersTOTPStep", testUserUpdateTOTPStep},
	{"User/AdvanceTOTPStep", testAdvanceTOTPStep},
	{"User/AdvanceTOTPStepConcurrent", testAdvanceTOTPStepConcurrent},
	{"User/LoginFailuresLock", testLoginFailuresLock},
	{"User/LoginFailuresWindow", testLoginFailuresWindow},
	{"User/LoginFailuresConcurrent", testLoginFailuresConcurrent},
	{"User/SignInMovesForward", testSignInForward},
	{"User/SignInConcurrent", testSignInConcurrent},

	// Sessions.
	{"Session/CreateGetRoundTrip", testSessionRoundTrip},
	{"Session/GetMissing", testSessionGetMissing},
	{"Session/Touch", testSessionTouch},
	{"Session/Delete", testSessionDelete},
	{"Session/DeleteUserSessions", testSessionDeleteByUser},
	{"Session/DeleteOtherSessions", testSessionDeleteOthers},

	// Personal access tokens.
	{"PAT/CreateGetRoundTrip", testPATRoundTrip},
	{"PAT/GetMissing", testPATGetMissing},
	{"PAT/ListByUserAndAll", testPATList},
	{"PAT/ListPages", testPATListPages},
	{"PAT/RevokeKeepsFirstTime", testPATRevoke},
	{"PAT/RevokeMissing", testPATRevokeMissing},

	// Lineage and last use.
	{"Lineage/RoundTrip", testLineageRoundTrip},
	{"Uses/RecordMovesForward", testUsesForward},
	{"Uses/UnknownIDsIgnored", testUsesUnknown},
	{"Uses/Empty", testUsesEmpty},

	// Settings.
	{"Setting/GetMissing", testSettingGetMissing},
	{"Setting/PutGetOverwrite", testSettingPut},
	{"Setting/BinaryValue", testSettingBinary},
	{"Setting/PutIfAbsent", testSettingPutIfAbsent},
	{"Setting/PutIfAbsentConcurrent", testSettingPutIfAbsentConcurrent},

	// Lifecycle.
	{"Ping", testPing},
	{"Close", testClose},
}

// zone is deliberately not UTC: stores must hand times back in UTC.
var zone = time.FixedZone("UTC+5:30", 5*3600+30*60)

// at returns a distinct time with a non-zero nanosecond part, i seconds
// after a fixed base.
func at(i int) time.Time {
	return time.Date(2026, 3, 4, 5, 6, 7, 123456789, zone).Add(time.Duration(i) * time.Second)
}

// wantCode fails t unless err carries the gatehouse error code want.
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %s", want)
	}
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Code != want {
		t.Fatalf("err = %v (code %s), want code %s", err, gatehouse.ErrorCode(err), want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// same fails t when got and want (pointers to the same struct type) differ
// in any field, comparing times with Equal (and requiring UTC), and byte
// and string slices by content.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(reflect.ValueOf(got), reflect.ValueOf(want)) {
		t.Errorf("%s: %s", what, d)
	}
}

var timeType = reflect.TypeOf(time.Time{})

func diff(got, want reflect.Value) []string {
	if got.Kind() == reflect.Pointer {
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("got %v, want %v", got, want)}
			}
			return nil
		}
		got, want = got.Elem(), want.Elem()
	}
	var out []string
	for i := 0; i < got.NumField(); i++ {
		name := got.Type().Field(i).Name
		g, w := got.Field(i), want.Field(i)
		switch {
		case g.Type() == timeType:
			gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
			switch {
			case !gt.Equal(wt):
				out = append(out, fmt.Sprintf("%s = %v, want %v", name, fmtTime(gt), fmtTime(wt)))
			case !gt.IsZero() && gt.Location() != time.UTC:
				out = append(out, fmt.Sprintf("%s is in zone %v, want UTC", name, gt.Location()))
			}
		case g.Kind() == reflect.Slice && g.Type().Elem().Kind() == reflect.Uint8:
			if !bytes.Equal(g.Bytes(), w.Bytes()) {
				out = append(out, fmt.Sprintf("%s = %x, want %x", name, g.Bytes(), w.Bytes()))
			}
		case g.Kind() == reflect.Slice:
			if g.Len() != 0 || w.Len() != 0 {
				if !reflect.DeepEqual(g.Interface(), w.Interface()) {
					out = append(out, fmt.Sprintf("%s = %q, want %q", name, g.Interface(), w.Interface()))
				}
			}
		default:
			if !reflect.DeepEqual(g.Interface(), w.Interface()) {
				out = append(out, fmt.Sprintf("%s = %v, want %v", name, g.Interface(), w.Interface()))
			}
		}
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano)
}

// ids returns the ID (or Username) field of each element of a slice of
// struct pointers.
func ids[T any](items []*T, field string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, reflect.ValueOf(it).Elem().FieldByName(field).String())
	}
	return out
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// Fixtures. Each returns a fully populated value so that every column is
// exercised by the round-trip cases.

func newKey(id string, created int) *store.Key {
	return &store.Key{
		ID:         id,
		Name:       "key " + id,
		Hash:       []byte{0x00, 0xff, byte(len(id)), 0x7f},
		Scopes:     []string{"orders:read", "orders:write"},
		Tier:       "gold",
		CreatedAt:  at(created),
		ExpiresAt:  at(created + 3600),
		Lineage:    store.Lineage{CreatedBy: "pat:pat_parent", CreatedByRoot: "user:alice"},
		LastUsedAt: at(created + 60),
	}
}

func newClient(id string, created int) *store.Client {
	return &store.Client{
		ID:         id,
		Name:       "client " + id,
		SecretHash: []byte{0x01, 0x00, 0xfe},
		Scopes:     []string{"a", "b:c"},
		Tier:       "free",
		CreatedAt:  at(created),
		ExpiresAt:  at(created + 7200),
		Lineage:    store.Lineage{CreatedBy: "user:bob", CreatedByRoot: "user:bob"},
		LastUsedAt: at(created + 30),
	}
}

func newUser(name string) *store.User {
	return &store.User{ // #nosec G101 -- a test fixture, not a credential
		Username:          name,
		Role:              "admin",
		Scopes:            []string{"orders:read"},
		PasswordHash:      "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		PasswordChangedAt: at(1),
		PasswordHistory:   []string{"$argon2id$old1", "$argon2id$old2"},
		CreatedAt:         at(0),
		Lineage:           store.Lineage{CreatedBy: "admin_token:admin-token", CreatedByRoot: "admin_token:admin-token"},
	}
}

func newSession(id byte, user string) *store.Session {
	return &store.Session{
		IDHash:     bytes.Repeat([]byte{id}, 32),
		Username:   user,
		CreatedAt:  at(10),
		LastSeenAt: at(11),
		ExpiresAt:  at(10 + 8*3600),
		Restricted: "totp_enrollment",
	}
}

func newPAT(id, user string, created int) *store.PAT {
	return &store.PAT{
		ID:         id,
		Username:   user,
		Name:       "token " + id,
		Hash:       []byte{0xaa, 0x00, 0xbb},
		Scopes:     []string{"orders:read"},
		Role:       "auditor",
		CreatedAt:  at(created),
		ExpiresAt:  at(created + 86400),
		Lineage:    store.Lineage{CreatedBy: "pat:pat_0", CreatedByRoot: "user:" + user},
		LastUsedAt: at(created + 5),
	}
}

// Keys.

func testKeyRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := newKey("k1", 0)
	full.RevokedAt = at(5)
	full.RotatedTo = "k9"
	full.RotatedFrom = "k0"
	bare := &store.Key{ID: "k2", Name: "", Hash: []byte{1}, CreatedAt: at(1)} // no scopes, zero times
	for _, k := range []*store.Key{full, bare} {
		must(t, s.CreateKey(ctx, k))
		got, err := s.GetKey(ctx, k.ID)
		must(t, err)
		same(t, k.ID, got, k)
		if got.ExpiresAt.IsZero() != k.ExpiresAt.IsZero() || got.RevokedAt.IsZero() != k.RevokedAt.IsZero() {
			t.Errorf("%s: zero times not preserved: %+v", k.ID, got)
		}
	}
}

func testKeyGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetKey(t.Context(), "nope")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testKeyDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := newKey("k1", 0)
	must(t, s.CreateKey(ctx, k))
	dup := newKey("k1", 9)
	dup.Name = "other"
	if err := s.CreateKey(ctx, dup); err == nil {
		t.Fatal("CreateKey with a taken id succeeded")
	}
	got, err := s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "original", got, k)
}

func testKeyListEmpty(t *testing.T, s store.Store) {
	keys, err := s.ListKeys(t.Context())
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %d keys", len(keys))
	}
}

func testKeyListOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Oldest first; ties on created_at broken by id.
	for _, k := range []*store.Key{newKey("c", 3), newKey("b", 1), newKey("z", 2), newKey("a", 2)} {
		must(t, s.CreateKey(ctx, k))
	}
	keys, err := s.ListKeys(ctx)
	must(t, err)
	wantIDs(t, "ListKeys", ids(keys, "ID"), []string{"b", "a", "z", "c"})
	same(t, "ListKeys[0]", keys[0], newKey("b", 1))
}

func testKeyListPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Ten keys at five instants (ties broken by id); k3 revoked, k4 expired
	// at now, k5 never expires; names with LIKE metacharacters.
	now := at(10_000)
	var all []string
	for i := range 10 {
		k := newKey(fmt.Sprintf("k%d", i), i/2)
		k.Name = fmt.Sprintf("Orders_%d", i)
		switch i {
		case 4:
			k.ExpiresAt = now
		case 5:
			k.ExpiresAt = time.Time{}
			k.Name = `100%_sure\`
		default:
			k.ExpiresAt = at(20_000)
		}
		must(t, s.CreateKey(ctx, k))
		all = append(all, k.ID)
	}
	_, err := s.RevokeKey(ctx, "k3", at(5))
	must(t, err)

	// Paging through three at a time visits every key once, in order.
	var seen []string
	var after store.PageCursor
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListKeysPage(ctx, store.KeyQuery{After: after, Limit: 3, Now: now})
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("page of %d keys, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			seen = append(seen, k.ID)
		}
		last := page[len(page)-1]
		after = store.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	wantIDs(t, "pages", seen, all)

	for _, tc := range []struct {
		name string
		q    store.KeyQuery
		want []string
	}{
		{"active", store.KeyQuery{Status: store.KeyActive}, []string{"k0", "k1", "k2", "k5", "k6", "k7", "k8", "k9"}},
		{"expired", store.KeyQuery{Status: store.KeyExpired}, []string{"k4"}},
		{"revoked", store.KeyQuery{Status: store.KeyRevoked}, []string{"k3"}},
		{"name, any case", store.KeyQuery{Name: "orders_7"}, []string{"k7"}},
		{"underscore is literal", store.KeyQuery{Name: "s_"}, []string{"k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8", "k9"}},
		{"percent is literal", store.KeyQuery{Name: "0%"}, []string{"k5"}},
		{"backslash is literal", store.KeyQuery{Name: `\`}, []string{"k5"}},
		{"no match", store.KeyQuery{Name: "%%"}, []string{}},
		{"after a tie", store.KeyQuery{After: store.PageCursor{CreatedAt: at(1), ID: "k2"}, Status: store.KeyActive}, []string{"k5", "k6", "k7", "k8", "k9"}},
		{"limit", store.KeyQuery{Status: store.KeyActive, Limit: 2}, []string{"k0", "k1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Now = now
			if q.Limit == 0 {
				q.Limit = 100
			}
			page, err := s.ListKeysPage(ctx, q)
			must(t, err)
			wantIDs(t, tc.name, ids(page, "ID"), tc.want)
		})
	}
}

func testKeyRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("k1", 0)))
	got, err := s.RevokeKey(ctx, "k1", at(100))
	must(t, err)
	want := newKey("k1", 0)
	want.RevokedAt = at(100)
	same(t, "after first revoke", got, want)

	got, err = s.RevokeKey(ctx, "k1", at(200))
	must(t, err)
	same(t, "after second revoke (returned)", got, want)
	got, err = s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "after second revoke (stored)", got, want)
}

func testKeyRevokeMissing(t *testing.T, s store.Store) {
	_, err := s.RevokeKey(t.Context(), "nope", at(1))
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testKeyRotate(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("old", 0)))
	next := newKey("new", 10)
	next.RotatedFrom = "old"
	must(t, s.RotateKey(ctx, "old", at(20), next))

	old, err := s.GetKey(ctx, "old")
	must(t, err)
	wantOld := newKey("old", 0)
	wantOld.RotatedTo = "new"
	wantOld.ExpiresAt = at(20)
	same(t, "old", old, wantOld)

	got, err := s.GetKey(ctx, "new")
	must(t, err)
	same(t, "new", got, next)
}

// rotateRefused checks that a refused rotation returns ENOTFOUND, stores
// nothing and leaves old as it was.
func rotateRefused(t *testing.T, s store.Store, oldID string) {
	t.Helper()
	ctx := t.Context()
	before, beforeErr := s.GetKey(ctx, oldID)
	next := newKey("next", 50)
	next.RotatedFrom = oldID
	wantCode(t, s.RotateKey(ctx, oldID, at(60), next), gatehouse.ENOTFOUND)
	_, err := s.GetKey(ctx, "next")
	wantCode(t, err, gatehouse.ENOTFOUND)
	if beforeErr == nil {
		after, err := s.GetKey(ctx, oldID)
		must(t, err)
		same(t, "old after refused rotation", after, before)
	}
}

func testKeyRotateRevoked(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("old", 0)))
	_, err := s.RevokeKey(ctx, "old", at(5))
	must(t, err)
	rotateRefused(t, s, "old")
}

func testKeyRotateRotated(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("old", 0)))
	must(t, s.RotateKey(ctx, "old", at(20), newKey("first", 10)))
	rotateRefused(t, s, "old")
}

func testKeyRotateMissing(t *testing.T, s store.Store) {
	rotateRefused(t, s, "nope")
}

func testKeyRotateAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("old", 0)))
	must(t, s.CreateKey(ctx, newKey("taken", 1)))
	// Inserting next fails (its id is taken), so old must not be linked
	// or have its expiry changed.
	if err := s.RotateKey(ctx, "old", at(20), newKey("taken", 10)); err == nil {
		t.Fatal("RotateKey onto a taken id succeeded")
	}
	old, err := s.GetKey(ctx, "old")
	must(t, err)
	same(t, "old after failed rotation", old, newKey("old", 0))
	taken, err := s.GetKey(ctx, "taken")
	must(t, err)
	same(t, "taken after failed rotation", taken, newKey("taken", 1))
	// And the key can still be rotated afterwards.
	must(t, s.RotateKey(ctx, "old", at(20), newKey("next", 10)))
}

func testKeyRotateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("old", 0)))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.RotateKey(ctx, "old", at(20), newKey(fmt.Sprintf("next%d", i), 10))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("rotations %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		default:
			wantCode(t, err, gatehouse.ENOTFOUND)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent rotation succeeded")
	}
	keys, err := s.ListKeys(ctx)
	must(t, err)
	wantIDs(t, "keys", ids(keys, "ID"), []string{"old", fmt.Sprintf("next%d", winner)})
	if keys[0].RotatedTo != keys[1].ID {
		t.Fatalf("old.RotatedTo = %q, want %q", keys[0].RotatedTo, keys[1].ID)
	}
}

// Clients.

func testClientRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := newClient("c1", 0)
	full.SecretRotatedAt = at(3)
	full.RevokedAt = at(4)
	bare := &store.Client{ID: "c2", SecretHash: []byte{9}, CreatedAt: at(1)}
	for _, c := range []*store.Client{full, bare} {
		must(t, s.CreateClient(ctx, c))
		got, err := s.GetClient(ctx, c.ID)
		must(t, err)
		same(t, c.ID, got, c)
	}
}

func testClientGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetClient(t.Context(), "nope")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testClientListOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListClients(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("ListClients on an empty store = %d clients", len(list))
	}
	for _, c := range []*store.Client{newClient("c", 3), newClient("b", 1), newClient("z", 2), newClient("a", 2)} {
		must(t, s.CreateClient(ctx, c))
	}
	list, err = s.ListClients(ctx)
	must(t, err)
	wantIDs(t, "ListClients", ids(list, "ID"), []string{"b", "a", "z", "c"})
	same(t, "ListClients[0]", list[0], newClient("b", 1))
}

func testClientRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, newClient("c1", 0)))
	want := newClient("c1", 0)
	want.RevokedAt = at(100)
	got, err := s.RevokeClient(ctx, "c1", at(100))
	must(t, err)
	same(t, "after first revoke", got, want)
	got, err = s.RevokeClient(ctx, "c1", at(200))
	must(t, err)
	same(t, "after second revoke (returned)", got, want)
	got, err = s.GetClient(ctx, "c1")
	must(t, err)
	same(t, "after second revoke (stored)", got, want)
}

func testClientRevokeMissing(t *testing.T, s store.Store) {
	_, err := s.RevokeClient(t.Context(), "nope", at(1))
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testClientSetSecret(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, newClient("c1", 0)))
	must(t, s.SetClientSecret(ctx, "c1", []byte{0xde, 0xad, 0x00}, at(30)))
	want := newClient("c1", 0)
	want.SecretHash = []byte{0xde, 0xad, 0x00}
	want.SecretRotatedAt = at(30)
	got, err := s.GetClient(ctx, "c1")
	must(t, err)
	same(t, "after SetClientSecret", got, want)
}

func testClientSetSecretRevoked(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, newClient("c1", 0)))
	revoked, err := s.RevokeClient(ctx, "c1", at(5))
	must(t, err)
	wantCode(t, s.SetClientSecret(ctx, "c1", []byte{1, 2, 3}, at(30)), gatehouse.ENOTFOUND)
	got, err := s.GetClient(ctx, "c1")
	must(t, err)
	same(t, "revoked client after refused SetClientSecret", got, revoked)
}

func testClientSetSecretMissing(t *testing.T, s store.Store) {
	wantCode(t, s.SetClientSecret(t.Context(), "nope", []byte{1}, at(1)), gatehouse.ENOTFOUND)
}

// Users.

func testUserRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := newUser("alice")
	full.PasswordExpired = true
	full.TOTPSecret = []byte{0x00, 0x01, 0xff}
	full.TOTPEnabled = true
	full.TOTPLastStep = 1<<40 + 7
	full.DisabledAt = at(9)
	full.LastSignInAt = at(8)
	bare := &store.User{Username: "bob", Role: "auditor", PasswordHash: "h", PasswordChangedAt: at(1), CreatedAt: at(1)}
	for _, u := range []*store.User{full, bare} {
		must(t, s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, u.Username)
		must(t, err)
		same(t, u.Username, got, u)
	}
}

func testUserGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetUser(t.Context(), "nobody")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testUserConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	other := newUser("alice")
	other.Role = "auditor"
	wantCode(t, s.CreateUser(ctx, other), gatehouse.ECONFLICT)
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	same(t, "original", got, newUser("alice"))
}

func testUserListOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListUsers(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("ListUsers on an empty store = %d users", len(list))
	}
	for _, name := range []string{"carol", "alice", "bob"} {
		must(t, s.CreateUser(ctx, newUser(name)))
	}
	list, err = s.ListUsers(ctx)
	must(t, err)
	wantIDs(t, "ListUsers", ids(list, "Username"), []string{"alice", "bob", "carol"})
	same(t, "ListUsers[0]", list[0], newUser("alice"))
}

func testUserUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser("alice")
	u.TOTPSecret = []byte{1, 2, 3}
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateUser(ctx, newUser("bob")))

	tests := []struct {
		name   string
		change func(u *store.User)
	}{
		{"every mutable field", func(u *store.User) {
			u.Role = "security"
			u.Scopes = []string{"x", "y:z"}
			u.PasswordHash = "$argon2id$new"
			u.PasswordChangedAt = at(40)
			u.PasswordExpired = true
			u.PasswordHistory = []string{"$argon2id$prev", "$argon2id$old1"}
			u.TOTPSecret = []byte{0xff, 0x00}
			u.TOTPEnabled = true
			u.TOTPLastStep = 12345
			u.DisabledAt = at(41)
		}},
		{"clear fields", func(u *store.User) {
			u.Scopes = nil
			u.PasswordExpired = false
			u.PasswordHistory = nil
			u.TOTPSecret = nil
			u.TOTPEnabled = false
			u.DisabledAt = time.Time{}
		}},
	}
	want := newUser("alice")
	want.TOTPSecret = []byte{1, 2, 3}
	for _, tt := range tests {
		tt.change(want)
		upd := *want
		must(t, s.UpdateUser(ctx, &upd))
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		same(t, tt.name, got, want)
		if got.DisabledAt.IsZero() != want.DisabledAt.IsZero() {
			t.Errorf("%s: DisabledAt zero-ness not preserved", tt.name)
		}
	}
	bob, err := s.GetUser(ctx, "bob")
	must(t, err)
	same(t, "other user untouched", bob, newUser("bob"))
}

// testSignInForward: RecordSignIn sets the last sign-in and never moves
// it back; UpdateUser, even from a copy read before the sign-in, leaves
// it alone; a missing user is ENOTFOUND.
func testSignInForward(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	stale, err := s.GetUser(ctx, "alice")
	must(t, err)
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"first", at(100), at(100)},
		{"later", at(200), at(200)},
		{"older: ignored", at(150), at(200)},
		{"same", at(200), at(200)},
	}
	for _, tt := range tests {
		must(t, s.RecordSignIn(ctx, "alice", tt.at))
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		sameTime(t, tt.name, got.LastSignInAt, tt.want.UTC())
	}
	stale.Role = "security"
	must(t, s.UpdateUser(ctx, stale))
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	sameTime(t, "after UpdateUser of a stale copy", got.LastSignInAt, at(200).UTC())
	if got.Role != "security" {
		t.Errorf("role after update = %q", got.Role)
	}
	bob, err := s.GetUser(ctx, "bob")
	must(t, err)
	same(t, "other user untouched", bob, newUser("bob"))
	wantCode(t, s.RecordSignIn(ctx, "nobody", at(1)), gatehouse.ENOTFOUND)
}

// testSignInConcurrent: of concurrent sign-ins recorded in any order (as
// by several replicas), the latest stays.
func testSignInConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.RecordSignIn(ctx, "alice", at(1000-i)) })
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	sameTime(t, "last sign-in", got.LastSignInAt, at(1000).UTC())
}

func testUserUpdateMissing(t *testing.T, s store.Store) {
	wantCode(t, s.UpdateUser(t.Context(), newUser("nobody")), gatehouse.ENOTFOUND)
}

func testUserDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	must(t, s.CreateSession(ctx, newSession(7, "alice")))
	must(t, s.CreatePAT(ctx, newPAT("pat_alice", "alice", 20)))
	must(t, s.CreatePAT(ctx, newPAT("pat_bob", "bob", 20)))
	if _, _, err := s.RecordLoginFailure(ctx, "alice", time.Now(), store.LockoutPolicy{MaxFailures: 5, Window: time.Minute, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	must(t, s.DeleteUser(ctx, "alice"))
	_, err := s.GetUser(ctx, "alice")
	wantCode(t, err, gatehouse.ENOTFOUND)
	_, err = s.GetPAT(ctx, "pat_alice")
	wantCode(t, err, gatehouse.ENOTFOUND)
	_, err = s.GetSession(ctx, bytes.Repeat([]byte{7}, 32))
	wantCode(t, err, gatehouse.ENOTFOUND)
	if _, err := s.GetPAT(ctx, "pat_bob"); err != nil {
		t.Fatalf("another user's token went with the deleted user: %v", err)
	}
	wantCode(t, s.DeleteUser(ctx, "alice"), gatehouse.ENOTFOUND)
	// The name can be taken again, with a clean sign-in record.
	must(t, s.CreateUser(ctx, newUser("alice")))
	lo, err := s.GetLockout(ctx, "alice")
	must(t, err)
	if lo.Failures != 0 {
		t.Fatalf("re-created user inherits %d failures", lo.Failures)
	}
}

// testLastAdminKept: disabling, demoting or deleting the last enabled
// admin is refused (ECONFLICT) and changes nothing; any other change of
// that admin, and any change once another enabled admin exists, is not.
func testLastAdminKept(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	bob := newUser("bob")
	bob.DisabledAt = at(5) // a disabled admin does not count
	must(t, s.CreateUser(ctx, bob))
	carol := newUser("carol")
	carol.Role = "security"
	must(t, s.CreateUser(ctx, carol))

	refused := []struct {
		name   string
		change func(ctx context.Context, u *store.User) error
	}{
		{"disable", func(ctx context.Context, u *store.User) error { u.DisabledAt = at(9); return s.UpdateUser(ctx, u) }},
		{"demote", func(ctx context.Context, u *store.User) error { u.Role = "auditor"; return s.UpdateUser(ctx, u) }},
		{"demote and disable", func(ctx context.Context, u *store.User) error {
			u.Role, u.DisabledAt = "security", at(9)
			return s.UpdateUser(ctx, u)
		}},
		{"delete", func(ctx context.Context, u *store.User) error { return s.DeleteUser(ctx, u.Username) }},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser("alice")
			err := tc.change(ctx, u)
			wantCode(t, err, gatehouse.ECONFLICT)
			if err != nil && !strings.Contains(err.Error(), "alice is the last enabled admin") {
				t.Errorf("message %q does not name the user and the problem", err)
			}
			got, err := s.GetUser(ctx, "alice")
			must(t, err)
			same(t, "refused change", got, newUser("alice"))
		})
	}
	// Other changes of the last admin go through.
	u := newUser("alice")
	u.PasswordHash, u.PasswordChangedAt = "$argon2id$new", at(50)
	must(t, s.UpdateUser(ctx, u))
	// Demoting or disabling someone else is no concern of the rule.
	carol.DisabledAt = at(51)
	must(t, s.UpdateUser(ctx, carol))
	must(t, s.DeleteUser(ctx, "carol"))
	must(t, s.DeleteUser(ctx, "bob"))
	wantCode(t, s.UpdateUser(ctx, newUser("nobody")), gatehouse.ENOTFOUND)
	wantCode(t, s.DeleteUser(ctx, "nobody"), gatehouse.ENOTFOUND)

	// With a second enabled admin, the first may go; then the second is the last.
	must(t, s.CreateUser(ctx, newUser("dave")))
	u.Role = "auditor"
	must(t, s.UpdateUser(ctx, u))
	d := newUser("dave")
	d.DisabledAt = at(52)
	wantCode(t, s.UpdateUser(ctx, d), gatehouse.ECONFLICT)
	must(t, s.DeleteUser(ctx, "alice"))
	wantCode(t, s.DeleteUser(ctx, "dave"), gatehouse.ECONFLICT)
}

// testLastAdminConcurrent: two writers that each remove one of the last
// two enabled admins at the same moment (as two replicas would) — one
// disabling, demoting or deleting alice, the other bob — never both
// succeed: exactly one does and the other is refused with ECONFLICT.
func testLastAdminConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	removals := []struct {
		name   string
		remove func(name string) error
	}{
		{"disable", func(name string) error { u := newUser(name); u.DisabledAt = at(9); return s.UpdateUser(ctx, u) }},
		{"demote", func(name string) error { u := newUser(name); u.Role = "security"; return s.UpdateUser(ctx, u) }},
		{"delete", func(name string) error { return s.DeleteUser(ctx, name) }},
	}
	const rounds = 10
	for round := range rounds {
		for _, a := range removals {
			for _, b := range removals {
				for _, name := range []string{"alice", "bob"} {
					if err := s.UpdateUser(ctx, newUser(name)); gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
						must(t, s.CreateUser(ctx, newUser(name)))
					} else {
						must(t, err)
					}
				}
				start := make(chan struct{})
				var errA, errB error
				var wg sync.WaitGroup
				wg.Go(func() { <-start; errA = a.remove("alice") })
				wg.Go(func() { <-start; errB = b.remove("bob") })
				close(start)
				wg.Wait()
				okA, okB := errA == nil, errB == nil
				if okA == okB {
					t.Fatalf("round %d, %s alice / %s bob: errors %v and %v, want exactly one ECONFLICT", round, a.name, b.name, errA, errB)
				}
				for _, err := range []error{errA, errB} {
					if err != nil {
						wantCode(t, err, gatehouse.ECONFLICT)
					}
				}
				admins := 0
				users, err := s.ListUsers(ctx)
				must(t, err)
				for _, u := range users {
					if u.Role == store.RoleAdmin && u.DisabledAt.IsZero() {
						admins++
					}
				}
				if admins != 1 {
					t.Fatalf("round %d, %s alice / %s bob: %d enabled admins left, want 1", round, a.name, b.name, admins)
				}
			}
		}
	}
}

func testUserUpdateTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	ok, err := s.AdvanceTOTPStep(ctx, "alice", 100)
	must(t, err)
	if !ok {
		t.Fatal("first advance refused")
	}
	must(t, s.CreateUser(ctx, newUser("root"))) // alice is not the last admin
	stale := newUser("alice")                   // read before the code was used: step 0
	stale.Role = "security"
	must(t, s.UpdateUser(ctx, stale))
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	if got.TOTPLastStep != 100 || got.Role != "security" {
		t.Fatalf("after a stale update: step %d role %s, want 100 security", got.TOTPLastStep, got.Role)
	}
}

func testAdvanceTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	for _, tt := range []struct {
		step int64
		want bool
	}{{10, true}, {10, false}, {9, false}, {12, true}, {11, false}, {13, true}} {
		ok, err := s.AdvanceTOTPStep(ctx, "alice", tt.step)
		must(t, err)
		if ok != tt.want {
			t.Errorf("advance to %d: %v, want %v", tt.step, ok, tt.want)
		}
	}
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	bob, err := s.GetUser(ctx, "bob")
	must(t, err)
	if got.TOTPLastStep != 13 || bob.TOTPLastStep != 0 {
		t.Errorf("last steps: alice %d bob %d, want 13 0", got.TOTPLastStep, bob.TOTPLastStep)
	}
	_, err = s.AdvanceTOTPStep(ctx, "nobody", 1)
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testAdvanceTOTPStepConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	const n = 16
	won := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { won[i], errs[i] = s.AdvanceTOTPStep(ctx, "alice", 777) })
	}
	wg.Wait()
	winners := 0
	for i := range n {
		must(t, errs[i])
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent advances to one step succeeded, want exactly 1", winners, n)
	}
}

var lockPolicy = store.LockoutPolicy{MaxFailures: 3, Window: time.Minute, Duration: 10 * time.Minute}

func testLoginFailuresLock(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	lo, err := s.GetLockout(ctx, "alice")
	must(t, err)
	same(t, "none recorded", lo, store.Lockout{})
	for i, want := range []struct {
		failures int
		locked   bool
	}{{1, false}, {2, false}, {0, true}} {
		lo, locked, err := s.RecordLoginFailure(ctx, "alice", at(100+i), lockPolicy)
		must(t, err)
		if lo.Failures != want.failures || locked != want.locked {
			t.Fatalf("failure %d: count %d locked %v, want %d %v", i+1, lo.Failures, locked, want.failures, want.locked)
		}
	}
	lo, err = s.GetLockout(ctx, "alice")
	must(t, err)
	if !lo.LockedUntil.Equal(at(102).Add(10*time.Minute)) || !lo.Locked(at(103)) || lo.Locked(at(102).Add(10*time.Minute)) {
		t.Fatalf("lock: until %s", fmtTime(lo.LockedUntil))
	}
	bob, err := s.GetLockout(ctx, "bob")
	must(t, err)
	same(t, "other user", bob, store.Lockout{})
	must(t, s.ClearLoginFailures(ctx, "alice"))
	lo, err = s.GetLockout(ctx, "alice")
	must(t, err)
	same(t, "cleared", lo, store.Lockout{})
	must(t, s.ClearLoginFailures(ctx, "nobody")) // nothing to clear: not an error
	// One failure locks when MaxFailures is 1.
	if _, locked, err := s.RecordLoginFailure(ctx, "bob", at(5), store.LockoutPolicy{MaxFailures: 1, Window: time.Minute, Duration: time.Minute}); err != nil || !locked {
		t.Fatalf("max_failures 1: locked %v, %v", locked, err)
	}
}

func testLoginFailuresWindow(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	step := func(sec, wantCount int, wantLocked bool) {
		t.Helper()
		lo, locked, err := s.RecordLoginFailure(ctx, "alice", at(sec), lockPolicy)
		must(t, err)
		if lo.Failures != wantCount || locked != wantLocked {
			t.Fatalf("failure at %ds: count %d locked %v, want %d %v", sec, lo.Failures, locked, wantCount, wantLocked)
		}
	}
	step(0, 1, false)
	step(30, 2, false)
	step(60, 1, false) // the first two fell out of the window
	step(70, 2, false)
	step(80, 0, true)
}

func testLoginFailuresConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	p := store.LockoutPolicy{MaxFailures: 8, Window: time.Hour, Duration: time.Hour}
	const n = 8
	locks := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, locks[i], errs[i] = s.RecordLoginFailure(ctx, "alice", at(1), p) })
	}
	wg.Wait()
	locked := 0
	for i := range n {
		must(t, errs[i])
		if locks[i] {
			locked++
		}
	}
	lo, err := s.GetLockout(ctx, "alice")
	must(t, err)
	if locked != 1 || !lo.Locked(at(2)) {
		t.Fatalf("%d concurrent failures (max %d): %d reported the lock, locked %v; want every failure counted and one lock", n, p.MaxFailures, locked, lo.Locked(at(2)))
	}
}

// Sessions. Sessions and PATs belong to a user, so each case creates the
// user first.

func testSessionRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	full := newSession(1, "alice")
	bare := newSession(2, "alice")
	bare.Restricted = ""
	for _, se := range []*store.Session{full, bare} {
		must(t, s.CreateSession(ctx, se))
		got, err := s.GetSession(ctx, se.IDHash)
		must(t, err)
		same(t, fmt.Sprintf("session %x", se.IDHash[:1]), got, se)
	}
}

func testSessionGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetSession(t.Context(), bytes.Repeat([]byte{7}, 32))
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testSessionTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateSession(ctx, newSession(1, "alice")))
	must(t, s.CreateSession(ctx, newSession(2, "alice")))
	must(t, s.TouchSession(ctx, newSession(1, "alice").IDHash, at(500)))
	want := newSession(1, "alice")
	want.LastSeenAt = at(500)
	got, err := s.GetSession(ctx, want.IDHash)
	must(t, err)
	same(t, "touched", got, want)
	other, err := s.GetSession(ctx, newSession(2, "alice").IDHash)
	must(t, err)
	same(t, "untouched", other, newSession(2, "alice"))
}

func testSessionDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateSession(ctx, newSession(1, "alice")))
	must(t, s.CreateSession(ctx, newSession(2, "alice")))
	must(t, s.DeleteSession(ctx, newSession(1, "alice").IDHash))
	_, err := s.GetSession(ctx, newSession(1, "alice").IDHash)
	wantCode(t, err, gatehouse.ENOTFOUND)
	if _, err := s.GetSession(ctx, newSession(2, "alice").IDHash); err != nil {
		t.Fatalf("other session: %v", err)
	}
	// Deleting what is already gone is not an error.
	must(t, s.DeleteSession(ctx, newSession(1, "alice").IDHash))
}

func testSessionDeleteByUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	for i, user := range []string{"alice", "alice", "bob"} {
		must(t, s.CreateSession(ctx, newSession(byte(i+1), user)))
	}
	must(t, s.DeleteUserSessions(ctx, "alice"))
	for i, gone := range []bool{true, true, false} {
		_, err := s.GetSession(ctx, newSession(byte(i+1), "").IDHash)
		if gone {
			wantCode(t, err, gatehouse.ENOTFOUND)
		} else if err != nil {
			t.Fatalf("bob's session: %v", err)
		}
	}
	must(t, s.DeleteUserSessions(ctx, "alice"))  // none left: not an error
	must(t, s.DeleteUserSessions(ctx, "nobody")) // unknown user: not an error
}

func testSessionDeleteOthers(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	for i, user := range []string{"alice", "alice", "alice", "bob"} {
		must(t, s.CreateSession(ctx, newSession(byte(i+1), user)))
	}
	must(t, s.DeleteOtherSessions(ctx, "alice", newSession(2, "").IDHash))
	for i, gone := range []bool{true, false, true, false} {
		_, err := s.GetSession(ctx, newSession(byte(i+1), "").IDHash)
		if gone {
			wantCode(t, err, gatehouse.ENOTFOUND)
		} else if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	must(t, s.DeleteOtherSessions(ctx, "alice", nil))
	_, err := s.GetSession(ctx, newSession(2, "").IDHash)
	wantCode(t, err, gatehouse.ENOTFOUND)
}

// Personal access tokens.

func testPATRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	full := newPAT("p1", "alice", 0)
	full.RevokedAt = at(7)
	bare := &store.PAT{ID: "p2", Username: "alice", Name: "bare", Hash: []byte{1}, CreatedAt: at(1)}
	for _, p := range []*store.PAT{full, bare} {
		must(t, s.CreatePAT(ctx, p))
		got, err := s.GetPAT(ctx, p.ID)
		must(t, err)
		same(t, p.ID, got, p)
	}
}

func testPATGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetPAT(t.Context(), "nope")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testPATList(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	for _, p := range []*store.PAT{
		newPAT("p4", "alice", 4), newPAT("p2", "bob", 2), newPAT("p1b", "alice", 1),
		newPAT("p1a", "bob", 1), newPAT("p3", "alice", 3),
	} {
		must(t, s.CreatePAT(ctx, p))
	}
	tests := []struct {
		user string
		want []string
	}{
		{"alice", []string{"p1b", "p3", "p4"}},
		{"bob", []string{"p1a", "p2"}},
		{"", []string{"p1a", "p1b", "p2", "p3", "p4"}},
		{"nobody", []string{}},
	}
	for _, tt := range tests {
		got, err := s.ListPATs(ctx, tt.user)
		must(t, err)
		wantIDs(t, fmt.Sprintf("ListPATs(%q)", tt.user), ids(got, "ID"), tt.want)
	}
	all, err := s.ListPATs(ctx, "")
	must(t, err)
	same(t, "ListPATs[0]", all[0], newPAT("p1a", "bob", 1))
}

func testPATRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreatePAT(ctx, newPAT("p1", "alice", 0)))
	want := newPAT("p1", "alice", 0)
	want.RevokedAt = at(100)
	got, err := s.RevokePAT(ctx, "p1", at(100))
	must(t, err)
	same(t, "after first revoke", got, want)
	got, err = s.RevokePAT(ctx, "p1", at(200))
	must(t, err)
	same(t, "after second revoke (returned)", got, want)
	got, err = s.GetPAT(ctx, "p1")
	must(t, err)
	same(t, "after second revoke (stored)", got, want)
}

func testPATRevokeMissing(t *testing.T, s store.Store) {
	_, err := s.RevokePAT(t.Context(), "nope", at(1))
	wantCode(t, err, gatehouse.ENOTFOUND)
}

// Settings.

func testSettingGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetSetting(t.Context(), "nope")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func wantSetting(t *testing.T, s store.Store, name string, want []byte) {
	t.Helper()
	got, err := s.GetSetting(t.Context(), name)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("setting %s = %x, want %x", name, got, want)
	}
}

func testSettingPut(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutSetting(ctx, "a", []byte("one")))
	must(t, s.PutSetting(ctx, "b", []byte("other")))
	wantSetting(t, s, "a", []byte("one"))
	must(t, s.PutSetting(ctx, "a", []byte("two")))
	wantSetting(t, s, "a", []byte("two"))
	wantSetting(t, s, "b", []byte("other"))
}

func testSettingBinary(t *testing.T, s store.Store) {
	v := make([]byte, 256)
	for i := range v {
		v[i] = byte(i)
	}
	must(t, s.PutSetting(t.Context(), "bin", v))
	wantSetting(t, s, "bin", v)
}

func testSettingPutIfAbsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		value      string
		wantStored bool
		wantValue  string
	}{
		{"first", true, "first"},
		{"second", false, "first"},
	}
	for _, tt := range tests {
		stored, err := s.PutSettingIfAbsent(ctx, "k", []byte(tt.value))
		must(t, err)
		if stored != tt.wantStored {
			t.Fatalf("PutSettingIfAbsent(%q) stored = %v, want %v", tt.value, stored, tt.wantStored)
		}
		wantSetting(t, s, "k", []byte(tt.wantValue))
	}
	// PutSetting still overwrites.
	must(t, s.PutSetting(ctx, "k", []byte("third")))
	wantSetting(t, s, "k", []byte("third"))
}

func testSettingPutIfAbsentConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	stored := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stored[i], errs[i] = s.PutSettingIfAbsent(ctx, "race", []byte{byte(i)})
		})
	}
	wg.Wait()
	winner := -1
	for i := range n {
		must(t, errs[i])
		if stored[i] {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both stored", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine stored the setting")
	}
	wantSetting(t, s, "race", []byte{byte(winner)})
}

// Lifecycle.

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
}

func testClose(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
	must(t, s.Close())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// Lineage and last use.

// testLineageRoundTrip: who created a credential survives every read
// (get and list) of every kind, and an update of a user keeps it.
func testLineageRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("k1", 0)))
	must(t, s.CreateClient(ctx, newClient("c1", 0)))
	u := newUser("alice")
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreatePAT(ctx, newPAT("p1", "alice", 0)))
	keys, err := s.ListKeys(ctx)
	must(t, err)
	same(t, "listed key", keys[0], newKey("k1", 0))
	clients, err := s.ListClients(ctx)
	must(t, err)
	same(t, "listed client", clients[0], newClient("c1", 0))
	pats, err := s.ListPATs(ctx, "")
	must(t, err)
	same(t, "listed token", pats[0], newPAT("p1", "alice", 0))
	must(t, s.CreateUser(ctx, newUser("root"))) // alice is not the last admin
	u.Role = "auditor"
	u.Lineage = store.Lineage{CreatedBy: "user:mallory", CreatedByRoot: "user:mallory"}
	must(t, s.UpdateUser(ctx, u))
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	same(t, "user lineage after update", got.Lineage, newUser("alice").Lineage)
}

// testUsesForward: RecordUses sets last use per kind, and never moves it
// back (batches may arrive out of order from several replicas).
func testUsesForward(t *testing.T, s store.Store) {
	ctx := t.Context()
	k, c := newKey("k1", 0), newClient("c1", 0)
	k.LastUsedAt, c.LastUsedAt = time.Time{}, time.Time{}
	must(t, s.CreateKey(ctx, k))
	must(t, s.CreateClient(ctx, c))
	must(t, s.CreateUser(ctx, newUser("alice")))
	p := newPAT("p1", "alice", 0)
	p.LastUsedAt = time.Time{}
	must(t, s.CreatePAT(ctx, p))
	must(t, s.RecordUses(ctx, []store.Use{
		{Kind: store.CredentialKey, ID: "k1", At: at(100)},
		{Kind: store.CredentialClient, ID: "c1", At: at(200)},
		{Kind: store.CredentialPAT, ID: "p1", At: at(300)},
	}))
	must(t, s.RecordUses(ctx, []store.Use{
		{Kind: store.CredentialKey, ID: "k1", At: at(50)}, // older: ignored
		{Kind: store.CredentialPAT, ID: "p1", At: at(400)},
	}))
	gk, err := s.GetKey(ctx, "k1")
	must(t, err)
	gc, err := s.GetClient(ctx, "c1")
	must(t, err)
	gp, err := s.GetPAT(ctx, "p1")
	must(t, err)
	sameTime(t, "key last use", gk.LastUsedAt, at(100).UTC())
	sameTime(t, "client last use", gc.LastUsedAt, at(200).UTC())
	sameTime(t, "token last use", gp.LastUsedAt, at(400).UTC())
	// Nothing else changed.
	k.LastUsedAt = at(100).UTC()
	same(t, "key", gk, k)
}

func testUsesUnknown(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateKey(ctx, newKey("k1", 0)))
	must(t, s.RecordUses(ctx, []store.Use{{Kind: store.CredentialKey, ID: "missing", At: at(100)}, {Kind: store.CredentialPAT, ID: "k1", At: at(100)}}))
	got, err := s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "key untouched", got, newKey("k1", 0))
	if err := s.RecordUses(ctx, []store.Use{{Kind: "users", ID: "k1", At: at(1)}}); err == nil {
		t.Error("RecordUses with an unknown kind: no error")
	}
}

func testUsesEmpty(t *testing.T, s store.Store) {
	must(t, s.RecordUses(t.Context(), nil))
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %s (%v), want %s", what, fmtTime(got), got.Location(), fmtTime(want))
	}
}

// walk pages through a list limit entries at a time until a page comes
// back empty, failing t on a page over limit or a list that does not end,
// and returns the ids in the order seen.
func walk[T any](t *testing.T, limit int, list func(after store.PageCursor) ([]*T, error), pos func(*T) store.PageCursor) []string {
	t.Helper()
	var seen []string
	var after store.PageCursor
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		page, err := list(after)
		must(t, err)
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		if len(page) == 0 {
			return seen
		}
		for _, v := range page {
			seen = append(seen, pos(v).ID)
		}
		after = pos(page[len(page)-1])
	}
}

func testClientListPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Ten clients at five instants (ties broken by id); c3 revoked, c4
	// expired at now, c5 never expires and has LIKE metacharacters in
	// its name.
	now := at(10_000)
	var all []string
	for i := range 10 {
		c := newClient(fmt.Sprintf("c%d", i), i/2)
		c.Name = fmt.Sprintf("Billing_%d", i)
		switch i {
		case 8:
			c.Name, c.ExpiresAt = "Billing_8 ÄRGER", at(20_000)
		case 4:
			c.ExpiresAt = now
		case 5:
			c.ExpiresAt = time.Time{}
			c.Name = `100%_sure\`
		default:
			c.ExpiresAt = at(20_000)
		}
		must(t, s.CreateClient(ctx, c))
		all = append(all, c.ID)
	}
	_, err := s.RevokeClient(ctx, "c3", at(5))
	must(t, err)

	seen := walk(t, 3, func(after store.PageCursor) ([]*store.Client, error) {
		return s.ListClientsPage(ctx, store.ClientQuery{After: after, Limit: 3, Now: now})
	}, func(c *store.Client) store.PageCursor { return store.PageCursor{CreatedAt: c.CreatedAt, ID: c.ID} })
	wantIDs(t, "pages", seen, all)

	for _, tc := range []struct {
		name string
		q    store.ClientQuery
		want []string
	}{
		{"active", store.ClientQuery{Status: store.KeyActive}, []string{"c0", "c1", "c2", "c5", "c6", "c7", "c8", "c9"}},
		{"expired", store.ClientQuery{Status: store.KeyExpired}, []string{"c4"}},
		{"revoked", store.ClientQuery{Status: store.KeyRevoked}, []string{"c3"}},
		{"name, any case", store.ClientQuery{Name: "billing_7"}, []string{"c7"}},
		{"the exact id", store.ClientQuery{Name: "c2"}, []string{"c2"}},
		{"name, any case beyond ASCII", store.ClientQuery{Name: "ärger"}, []string{"c8"}},
		{"not part of an id", store.ClientQuery{Name: "c"}, []string{}},
		{"underscore is literal", store.ClientQuery{Name: "g_"}, []string{"c0", "c1", "c2", "c3", "c4", "c6", "c7", "c8", "c9"}},
		{"percent is literal", store.ClientQuery{Name: "0%"}, []string{"c5"}},
		{"backslash is literal", store.ClientQuery{Name: `\`}, []string{"c5"}},
		{"these ids", store.ClientQuery{IDs: []string{"c9", "c1", "nope"}}, []string{"c1", "c9"}},
		{"these ids and a state", store.ClientQuery{IDs: []string{"c3", "c4", "c5"}, Status: store.KeyActive}, []string{"c5"}},
		{"no ids", store.ClientQuery{IDs: []string{}}, []string{}},
		{"after a tie", store.ClientQuery{After: store.PageCursor{CreatedAt: at(1), ID: "c2"}, Status: store.KeyActive}, []string{"c5", "c6", "c7", "c8", "c9"}},
		{"limit", store.ClientQuery{Status: store.KeyActive, Limit: 2}, []string{"c0", "c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Now = now
			if q.Limit == 0 {
				q.Limit = 100
			}
			page, err := s.ListClientsPage(ctx, q)
			must(t, err)
			wantIDs(t, tc.name, ids(page, "ID"), tc.want)
		})
	}
}

func testPATListPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("alice")))
	must(t, s.CreateUser(ctx, newUser("bob")))
	// Ten tokens at five instants, alice's the even ones; p3 revoked, p4
	// expired at now (a token is expired from its expiry on), p5 has LIKE
	// metacharacters in its name.
	now := at(10_000)
	var all, alices []string
	for i := range 10 {
		owner := "bob"
		if i%2 == 0 {
			owner = "alice"
			alices = append(alices, fmt.Sprintf("p%d", i))
		}
		p := newPAT(fmt.Sprintf("p%d", i), owner, i/2)
		p.Name, p.ExpiresAt = fmt.Sprintf("Deploy_%d", i), at(20_000)
		switch i {
		case 4:
			p.ExpiresAt = now
		case 5:
			p.Name = `100%_sure\`
		}
		must(t, s.CreatePAT(ctx, p))
		all = append(all, p.ID)
	}
	_, err := s.RevokePAT(ctx, "p3", at(5))
	must(t, err)

	pos := func(p *store.PAT) store.PageCursor { return store.PageCursor{CreatedAt: p.CreatedAt, ID: p.ID} }
	for _, tc := range []struct {
		user string
		want []string
	}{{"", all}, {"alice", alices}} {
		seen := walk(t, 2, func(after store.PageCursor) ([]*store.PAT, error) {
			return s.ListPATsPage(ctx, store.PATQuery{After: after, Limit: 2, Username: tc.user, Now: now})
		}, pos)
		wantIDs(t, "pages of "+tc.user, seen, tc.want)
	}

	for _, tc := range []struct {
		name string
		q    store.PATQuery
		want []string
	}{
		{"active", store.PATQuery{Status: store.KeyActive}, []string{"p0", "p1", "p2", "p5", "p6", "p7", "p8", "p9"}},
		{"active, one owner", store.PATQuery{Status: store.KeyActive, Username: "bob"}, []string{"p1", "p5", "p7", "p9"}},
		{"expired", store.PATQuery{Status: store.KeyExpired}, []string{"p4"}},
		{"revoked", store.PATQuery{Status: store.KeyRevoked}, []string{"p3"}},
		{"revoked, another owner", store.PATQuery{Status: store.KeyRevoked, Username: "alice"}, []string{}},
		{"no such owner", store.PATQuery{Username: "carol"}, []string{}},
		{"name, any case", store.PATQuery{Name: "deploy_7"}, []string{"p7"}},
		{"the exact id", store.PATQuery{Name: "p2"}, []string{"p2"}},
		{"percent is literal", store.PATQuery{Name: "0%"}, []string{"p5"}},
		{"underscore is literal", store.PATQuery{Name: "y_", Username: "alice"}, []string{"p0", "p2", "p4", "p6", "p8"}},
		{"after a tie", store.PATQuery{After: store.PageCursor{CreatedAt: at(1), ID: "p2"}, Username: "alice"}, []string{"p4", "p6", "p8"}},
		{"limit", store.PATQuery{Status: store.KeyActive, Limit: 2}, []string{"p0", "p1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Now = now
			if q.Limit == 0 {
				q.Limit = 100
			}
			page, err := s.ListPATsPage(ctx, q)
			must(t, err)
			wantIDs(t, tc.name, ids(page, "ID"), tc.want)
		})
	}
}

func testUserListPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Six accounts, made out of name order; dave disabled, carol locked
	// out by failed sign-ins (erin was, but her lock is over).
	roles := map[string]string{"frank": "admin", "alice": "admin", "bob_1": "security", "carol": "auditor", "dave": "auditor", "erin": "auditor"}
	for _, name := range []string{"frank", "carol", "alice", "erin", "dave", "bob_1"} {
		u := newUser(name)
		u.Role = roles[name]
		must(t, s.CreateUser(ctx, u))
	}
	dave, err := s.GetUser(ctx, "dave")
	must(t, err)
	dave.DisabledAt = at(50)
	must(t, s.UpdateUser(ctx, dave))
	for i := range lockPolicy.MaxFailures {
		_, _, err := s.RecordLoginFailure(ctx, "carol", at(100+i), lockPolicy)
		must(t, err)
		_, _, err = s.RecordLoginFailure(ctx, "erin", at(i-1000), lockPolicy)
		must(t, err)
	}
	now := at(200) // carol locked until at(102)+10m; erin's lock ended at(-998)+10m
	all := []string{"alice", "bob_1", "carol", "dave", "erin", "frank"}

	var seen []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListUsersPage(ctx, store.UserQuery{After: after, Limit: 4, Now: now})
		must(t, err)
		if len(page) > 4 {
			t.Fatalf("page of %d users, limit 4", len(page))
		}
		if len(page) == 0 {
			break
		}
		seen = append(seen, ids(page, "Username")...)
		after = page[len(page)-1].Username
	}
	wantIDs(t, "pages", seen, all)

	for _, tc := range []struct {
		name string
		q    store.UserQuery
		want []string
	}{
		{"active", store.UserQuery{Status: store.UserActive}, []string{"alice", "bob_1", "carol", "erin", "frank"}},
		{"disabled", store.UserQuery{Status: store.UserDisabled}, []string{"dave"}},
		{"locked", store.UserQuery{Status: store.UserLocked}, []string{"carol"}},
		{"locked once the lock is over", store.UserQuery{Status: store.UserLocked, Now: at(102).Add(10 * time.Minute)}, []string{}},
		{"role", store.UserQuery{Role: "auditor"}, []string{"carol", "dave", "erin"}},
		{"role and state", store.UserQuery{Role: "auditor", Status: store.UserActive}, []string{"carol", "erin"}},
		{"name, any case", store.UserQuery{Name: "RAN"}, []string{"frank"}},
		{"underscore is literal", store.UserQuery{Name: "b_"}, []string{"bob_1"}},
		{"no match", store.UserQuery{Name: "%"}, []string{}},
		{"after", store.UserQuery{After: "carol", Role: "auditor"}, []string{"dave", "erin"}},
		{"limit", store.UserQuery{Status: store.UserActive, Limit: 2}, []string{"alice", "bob_1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			if q.Now.IsZero() {
				q.Now = now
			}
			if q.Limit == 0 {
				q.Limit = 100
			}
			page, err := s.ListUsersPage(ctx, q)
			must(t, err)
			wantIDs(t, tc.name, ids(page, "Username"), tc.want)
		})
	}
}
