package backup

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Schedule is when Run makes and tests backups.
type Schedule struct {
	// Every is how often a backup is made (and old ones pruned after it).
	Every time.Duration
	// VerifyEvery is how often the newest backup is restore-tested.
	VerifyEvery time.Duration
	// StateFile keeps the time of the last restore test across restarts
	// ("" keeps it in memory only).
	StateFile string
}

// scheduled is the actor of the operations Run starts.
var scheduled = By{Actor: gatehouse.Actor{Kind: "system", ID: "backup-schedule"}}

// retryAfter is how soon a failed or crowded-out operation is tried again.
const retryAfter = 5 * time.Minute

// Run makes a backup every sch.Every and prunes after each, and
// restore-tests the newest every sch.VerifyEvery, until ctx ends. The
// first backup is due when the newest stored one is sch.Every old (at
// once if there is none); the first restore test after the first backup
// unless the state file says when the last one ran. A failure is logged
// and audited, and tried again after 5 minutes (or sch.Every if shorter).
func (s *Service) Run(ctx context.Context, sch Schedule) {
	nextCreate := s.due(ctx, sch.Every)
	var nextVerify time.Time // zero: after the next backup
	if last, ok := readState(sch.StateFile); ok {
		nextVerify = last.Add(sch.VerifyEvery)
		s.lastVerified.CompareAndSwap(0, last.UnixNano())
	}
	retry := min(retryAfter, sch.Every)
	for {
		next := nextCreate
		if !nextVerify.IsZero() && nextVerify.Before(next) {
			next = nextVerify
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(nextCreate) {
			// Another replica may have made one meanwhile.
			if nextCreate = s.due(ctx, sch.Every); nextCreate.After(now) {
				continue
			}
			nextCreate = now.Add(sch.Every)
			if _, err := s.Create(ctx, scheduled); err != nil {
				nextCreate = now.Add(retry)
				s.log.Error("scheduled backup failed", "err", err, "retry_in", retry)
			} else {
				if _, err := s.Prune(ctx, scheduled); err != nil && ctx.Err() == nil {
					s.log.Error("pruning backups failed", "err", err)
				}
				if nextVerify.IsZero() {
					nextVerify = time.Now()
				}
			}
		}
		if now = time.Now(); !nextVerify.IsZero() && !now.Before(nextVerify) {
			nextVerify = now.Add(sch.VerifyEvery)
			if err := s.verifyNewest(ctx); err != nil {
				nextVerify = now.Add(retry)
				s.log.Error("scheduled restore test failed to run", "err", err, "retry_in", retry)
			} else {
				writeState(sch.StateFile, now)
			}
		}
	}
}

// due is when the next backup is: every after the newest stored one (the
// zero time, at once, if there is none or the destination cannot be
// listed).
func (s *Service) due(ctx context.Context, every time.Duration) time.Time {
	list, err := s.List(ctx)
	if err != nil {
		s.log.Warn("list backups", "err", err)
	}
	if len(list) == 0 {
		return time.Time{}
	}
	s.noteCreated(list[0].CreatedAt)
	return list[0].CreatedAt.Add(every)
}

// verifyNewest restore-tests the newest stored backup. A backup that
// fails the test is recorded (and logged) by Verify; the error is for a
// test that could not run.
func (s *Service) verifyNewest(ctx context.Context) error {
	list, err := s.List(ctx)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("no backup to test")
	}
	_, err = s.Verify(ctx, scheduled, list[0].ID)
	return err
}

type state struct {
	LastVerify time.Time `json:"last_verify"`
}

func readState(path string) (time.Time, bool) {
	if path == "" {
		return time.Time{}, false
	}
	b, err := os.ReadFile(path)
	var st state
	if err != nil || json.Unmarshal(b, &st) != nil || st.LastVerify.IsZero() {
		return time.Time{}, false
	}
	return st.LastVerify, true
}

func writeState(path string, t time.Time) {
	if path == "" {
		return
	}
	b, _ := json.Marshal(state{LastVerify: t.UTC()})
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, path)
	}
}
