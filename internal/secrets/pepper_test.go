package secrets_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

func TestPepperSet(t *testing.T) {
	now := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	v1 := secrets.PepperVersion{Version: 1, Value: bytes.Repeat([]byte{1}, 32)}
	set := secrets.PepperSet{Versions: []secrets.PepperVersion{v1}}
	next, err := set.Rotate(now, bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Versions) != 1 || len(next.Versions) != 2 || next.Newest().Version != 2 || !next.Newest().CreatedAt.Equal(now) {
		t.Fatalf("Rotate: %+v from %+v", next, set)
	}
	back, err := secrets.ParsePepperSet(next.Marshal())
	if err != nil || len(back.Versions) != 2 || !bytes.Equal(back.Newest().Value, next.Newest().Value) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := set.Rotate(now, strings.NewReader("short")); err == nil {
		t.Fatal("Rotate with a short random source succeeded")
	}
}

func TestParsePepperSetRefused(t *testing.T) {
	secret := "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=" // never quoted in errors
	for _, tt := range []struct{ name, in, msg string }{
		{"not JSON", "{", "not a JSON list"},
		{"no version", `{"versions":[]}`, "holds no version"},
		{"version 0", `{"versions":[{"version":0,"value":"` + secret + `"}]}`, "versions must increase"},
		{"out of order", `{"versions":[{"version":2,"value":"` + secret + `"},{"version":1,"value":"` + secret + `"}]}`, "versions must increase"},
		{"duplicate", `{"versions":[{"version":1,"value":"` + secret + `"},{"version":1,"value":"` + secret + `"}]}`, "versions must increase"},
		{"short value", `{"versions":[{"version":1,"value":"c2hvcnQ="}]}`, "want 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secrets.ParsePepperSet([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), secret) {
				t.Fatalf("err = %v, want %q without the value", err, tt.msg)
			}
		})
	}
}
