package cputime_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cputime"
)

// TestProcessCountsWork: busy work moves the clock forward.
func TestProcessCountsWork(t *testing.T) {
	before, err := cputime.Process()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1<<20)
	deadline := time.Now().Add(time.Second)
	for {
		sha256.Sum256(b)
		now, err := cputime.Process()
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v through a second of hashing", before)
		}
	}
}
