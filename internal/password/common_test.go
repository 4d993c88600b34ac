package password_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/trustelem/zxcvbn/frequency"

	"github.com/gatehouse/gatehouse/internal/password"
)

func TestCommonList(t *testing.T) {
	if n := password.CommonCount(); n < 10000 {
		t.Fatalf("CommonCount() = %d, want at least 10,000", n)
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"123456", true},
		{"qwerty", true},
		{"PASSWORD", true},
		{"QwErTy", true},
		{"iloveyou", true},
		{"trustno1", true},
		{"", false},
		{"password ", false},
		{strongPassphrase, false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			if got := password.IsCommon(tt.pw); got != tt.want {
				t.Fatalf("IsCommon(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
}

// TestCommonList_Source checks that the embedded list is exactly the one
// internal/gencommon derives from the zxcvbn module, so it was not edited
// by hand and is regenerated when the module is upgraded.
func TestCommonList_Source(t *testing.T) {
	want := map[string]bool{}
	for _, pw := range frequency.FrequencyLists["passwords"] {
		want[strings.ToLower(strings.TrimSpace(pw))] = true
	}
	delete(want, "")
	if got := password.CommonCount(); got != len(want) {
		t.Fatalf("CommonCount() = %d, zxcvbn's list has %d: run go generate ./internal/password", got, len(want))
	}
	for pw := range want {
		if !password.IsCommon(pw) {
			t.Fatalf("%q is on zxcvbn's list but not embedded: run go generate ./internal/password", pw)
		}
	}
}

func TestIsCommon_Concurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !password.IsCommon("dragon") {
				t.Error("dragon is not common")
			}
		})
	}
	wg.Wait()
}

func BenchmarkIsCommon(b *testing.B) {
	password.IsCommon("warm up")
	for b.Loop() {
		password.IsCommon("Correct-Horse")
	}
}
