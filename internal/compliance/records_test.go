package compliance_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// memSettings is a settings store in memory that counts writes.
type memSettings struct {
	mu     sync.Mutex
	rows   map[string][]byte
	writes map[string]int
}

func newMemSettings() *memSettings {
	return &memSettings{rows: map[string][]byte{}, writes: map[string]int{}}
}

func (m *memSettings) GetSetting(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.rows[name]
	if !ok {
		return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "setting %s not found", name)
	}
	return append([]byte(nil), b...), nil
}

func (m *memSettings) PutSetting(_ context.Context, name string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[name] = append([]byte(nil), value...)
	m.writes[name]++
	return nil
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestReviewsMigrateFromOneRow(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := []compliance.Review{
		{ID: "rev_01kdyam0drvvbed608695r78h4", StartedAt: at, StartedBy: "user:alice", CompletedAt: at.Add(time.Hour), CompletedBy: "user:bob",
			Items: []compliance.ReviewItem{{ID: "item_1", Principal: "user:carol", Kind: "user", Scopes: []string{}, Decision: "approve", Reason: "ok"}}},
		{ID: "rev_01kdyam0drvvbed608695r78h5", StartedAt: at.Add(48 * time.Hour), StartedBy: "user:alice",
			Items: []compliance.ReviewItem{
				{ID: "item_1", Principal: "user:carol", Kind: "user", Scopes: []string{}},
				{ID: "item_2", Principal: "api_key:key_x", Kind: "api_key", Scopes: []string{"read"}, Decision: "revoke", Reason: "gone"},
			}},
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	st := newMemSettings()
	st.rows["compliance.reviews"] = b
	rec := compliance.NewRecords(st, fixedClock{at.Add(72 * time.Hour)})

	sums, err := rec.ReviewSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].ID != old[0].ID || sums[1].ItemCount != 2 || sums[1].Decided != 1 || sums[1].Decisions["revoke"] != 1 || !sums[1].CompletedAt.IsZero() {
		t.Fatalf("summaries after migration: %+v", sums)
	}
	for _, rv := range old {
		if _, ok := st.rows["compliance.reviews/"+rv.ID]; !ok {
			t.Errorf("no row of its own for %s after migration", rv.ID)
		}
	}
	all, err := rec.Reviews(ctx)
	if err != nil || len(all) != 2 || compliance.ReviewDigest(all[1]) != compliance.ReviewDigest(old[1]) {
		t.Fatalf("Reviews after migration: %v %+v", err, all)
	}

	// A decision rewrites that review and the index, not the others.
	before := st.writes["compliance.reviews/"+old[0].ID]
	it, err := rec.Decide(ctx, old[1].ID, "item_1", compliance.DecisionApprove, "still needed", "user:bob")
	if err != nil || it.Decision != "approve" {
		t.Fatalf("Decide: %v %+v", err, it)
	}
	if st.writes["compliance.reviews/"+old[0].ID] != before {
		t.Error("a decision on one review rewrote another")
	}
	if string(st.rows["compliance.reviews"]) != string(b) {
		t.Error("the old row changed")
	}
	sums, _ = rec.ReviewSummaries(ctx)
	if sums[1].Decided != 2 || sums[1].Decisions["approve"] != 1 {
		t.Errorf("summary after the decision: %+v", sums[1])
	}
	rv, err := rec.CompleteReview(ctx, old[1].ID, "user:bob")
	if err != nil || rv.CompletedAt.IsZero() {
		t.Fatalf("CompleteReview: %v", err)
	}
	if sums, _ = rec.ReviewSummaries(ctx); sums[1].CompletedAt.IsZero() || sums[1].CompletedBy != "user:bob" {
		t.Errorf("summary after completion: %+v", sums[1])
	}
}

func TestReviewsRowEach(t *testing.T) {
	ctx := context.Background()
	st := newMemSettings()
	rec := compliance.NewRecords(st, nil)
	if sums, err := rec.ReviewSummaries(ctx); err != nil || len(sums) != 0 {
		t.Fatalf("empty store: %v %v", err, sums)
	}
	rv, err := rec.StartReview(ctx, "user:alice", []compliance.ReviewItem{{Principal: "user:carol", Kind: "user"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.StartReview(ctx, "user:alice", nil); gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
		t.Errorf("second open review: %v, want a conflict", err)
	}
	if _, ok := st.rows["compliance.reviews"]; ok {
		t.Error("a new store wrote the old single row")
	}
	got, err := rec.Review(ctx, rv.ID)
	if err != nil || len(got.Items) != 1 || got.Items[0].ID != "item_1" {
		t.Fatalf("Review: %v %+v", err, got)
	}
	for _, id := range []string{"rev_nope", "", "rev_../../x", rv.ID + "0", strings.ToUpper(rv.ID)} {
		if _, err := rec.Review(ctx, id); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
			t.Errorf("Review(%q): %v, want not found", id, err)
		}
	}
}

func TestReviewsBadIndex(t *testing.T) {
	st := newMemSettings()
	st.rows["compliance.reviews.index"] = []byte("{not json")
	if _, err := compliance.NewRecords(st, nil).ReviewSummaries(context.Background()); err == nil || !strings.Contains(err.Error(), "compliance.reviews.index") {
		t.Errorf("a broken index: %v, want an error naming it", err)
	}
}

// TestReviewsMigrateWhileStarting: readers migrating the old row while a
// review starts do not drop the new review from the index.
func TestReviewsMigrateWhileStarting(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old, err := json.Marshal([]compliance.Review{{ID: "rev_01kdyam0drvvbed608695r78h4", StartedAt: at, StartedBy: "user:alice",
		CompletedAt: at, CompletedBy: "user:bob", Items: []compliance.ReviewItem{}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		st := newMemSettings()
		st.rows["compliance.reviews"] = old
		rec := compliance.NewRecords(st, nil)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := rec.ReviewSummaries(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		rv, err := rec.StartReview(ctx, "user:alice", nil)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		sums, err := rec.ReviewSummaries(ctx)
		if err != nil || len(sums) != 2 || sums[1].ID != rv.ID {
			t.Fatalf("after migration and a start: %v %+v", err, sums)
		}
	}
}
