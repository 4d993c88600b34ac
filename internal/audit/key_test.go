package audit_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"golang.org/x/mod/sumdb/note"
)

func TestParseSignerKey(t *testing.T) {
	for range 50 { // base64 of the key holds '+' now and then
		skey, err := audit.GenerateSignerKey("gatehouse.test/audit")
		if err != nil {
			t.Fatal(err)
		}
		s, vkey, err := audit.ParseSignerKey(skey+"\n", "gatehouse.test/audit")
		if err != nil {
			t.Fatal(err)
		}
		signed, err := audit.SignCheckpoint(s, 1, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := note.NewVerifier(vkey)
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Fatalf("derived verifier key does not verify: %v", err)
		}
		if _, _, err := audit.ParseSignerKey(skey, "other/origin"); err == nil || !strings.Contains(err.Error(), "differs") {
			t.Fatalf("other origin: %v", err)
		}
	}
	if _, _, err := audit.ParseSignerKey("PRIVATE+KEY+hunter2", "x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad key: %v", err)
	}
}
