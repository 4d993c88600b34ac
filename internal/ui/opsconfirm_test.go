package ui

import "testing"

func TestOpsRFC3339(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2026-12-01T09:00", "2026-12-01T09:00:00Z"},
		{"2026-12-01T09:00:30", "2026-12-01T09:00:30Z"},
		{"2026-12-01 09:00", "2026-12-01T09:00:00Z"},
		{"2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z"},
		{"2026-12-01T09:00:00+02:00", "2026-12-01T09:00:00+02:00"}, // the API reads it
		{"yesterday", "yesterday"},                                 // the API refuses it
		{"", ""},
	}
	for _, tt := range tests {
		if got := opsRFC3339(tt.in); got != tt.want {
			t.Errorf("opsRFC3339(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOpsSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {2 << 40, "2.0 TiB"}, {1 << 62, "4096.0 PiB"},
	}
	for _, tt := range tests {
		if got := opsSize(tt.in); got != tt.want {
			t.Errorf("opsSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
