package ui

import (
	"testing"
	"time"
)

func TestFormatAge(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"zero", time.Time{}, "never"},
		{"now", now, "just now"},
		{"59s", now.Add(-59 * time.Second), "just now"},
		{"minutes", now.Add(-5*time.Minute - 30*time.Second), "5 min ago"},
		{"hours", now.Add(-3*time.Hour - 59*time.Minute), "3 h ago"},
		{"47h", now.Add(-47 * time.Hour), "47 h ago"},
		{"days", now.Add(-50 * time.Hour), "2 d ago"},
		{"future", now.Add(10 * time.Minute), "in 10 min"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatAge(now, tt.t); got != tt.want {
				t.Fatalf("formatAge = %q, want %q", got, tt.want)
			}
		})
	}
}
