package policy_test

import (
	"bytes"
	"context"
	"io/fs"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/policy"
)

func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{"authz.rego", "authz_test.rego"} {
		if _, err := fs.Stat(policy.FS(), name); err != nil {
			t.Errorf("%s not embedded: %v", name, err)
		}
	}
}

// TestRegoTests runs the policies' own Rego tests, as
// `gatehouse policy test policy/` does.
func TestRegoTests(t *testing.T) {
	var out bytes.Buffer
	code, err := authz.RunTests(context.Background(), ".", true, &out)
	if code != authz.ExitPass || err != nil {
		t.Fatalf("policy tests: exit %d, %v\n%s", code, err, out.String())
	}
	t.Log(out.String())
}
