package password_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/password"
)

func TestStrength(t *testing.T) {
	tests := []struct {
		name       string
		pw         string
		user       []string
		score      int    // exact score, or -1 for "at least 3"
		hintPrefix string // "" means no hint
	}{
		{"common", "password", nil, 0, "avoid common passwords"},
		{"keyboard", "zxcvbnm,./asdfg", nil, 2, "avoid keyboard patterns"},
		{"sequence", "abcdefghijklmnop", nil, 0, "avoid sequences"},
		{"repeat", "zzzzzzzzzzzzzzz", nil, 0, "avoid repeated"},
		{"date", "19/04/1987", nil, 1, "avoid dates"},
		{"l33t", "p@$$w0rd", nil, 0, "avoid common passwords"},
		{"name", "Aliceliddell", nil, 1, "names and surnames"},
		{"username as input", "zorbatron99", []string{"zorbatron"}, 1, "avoid your username"},
		{"username unknown without input", "zorbatron99", nil, -1, ""},
		{"passphrase", strongPassphrase, nil, 4, ""},
		{"random", "q8#Vr!2mZt@Lp0wX", nil, 4, ""},
		{"invalid utf-8", "abc\xffdefghijklmn", nil, 0, "use valid text"},
		{"very long is cut to 100 bytes", strings.Repeat("a", 100) + strongPassphrase, nil, 1, "avoid repeated"},
		{"long repeat of a strong chunk", strings.Repeat("Tx9!mQ", 200), nil, 4, ""},
		{"repeated non-ascii", strings.Repeat("é", 40), nil, 1, "avoid repeated"},
		{"three distinct non-ascii", strings.Repeat("éüß", 10), nil, 1, "avoid repeated"},
		{"cut inside a character", strings.Repeat("a", 99) + "é" + strongPassphrase, nil, 1, "avoid repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, hint := password.Strength(tt.pw, tt.user...)
			if tt.score >= 0 && score != tt.score || tt.score < 0 && score < 3 {
				t.Errorf("score = %d, want %d", score, tt.score)
			}
			if tt.hintPrefix == "" && hint != "" && score == password.MaxStrength {
				t.Errorf("hint = %q for a maximal score", hint)
			}
			if !strings.HasPrefix(hint, tt.hintPrefix) {
				t.Errorf("hint = %q, want prefix %q", hint, tt.hintPrefix)
			}
		})
	}
}

func TestStrength_Concurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if s, _ := password.Strength(strongPassphrase, "alice"); s != 4 {
				t.Errorf("score = %d", s)
			}
		})
	}
	wg.Wait()
}

func BenchmarkStrength(b *testing.B) {
	for _, pw := range []string{strongPassphrase, strings.Repeat("Tx9!mQ", 50)} {
		b.Run(pw[:6], func(b *testing.B) {
			for b.Loop() {
				password.Strength(pw, "alice")
			}
		})
	}
}
