package authz_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/policy"
)

func TestRunTests(t *testing.T) {
	tests := []struct {
		name     string
		dir      string
		verbose  bool
		wantCode int
		wantErr  string
		want     []string // regexps the output must match
	}{
		{"default policy dir passes", "../../policy", false, authz.ExitPass, "",
			[]string{`(?m)^PASS: (\d+)/(\d+)$`}},
		{"default policy verbose", "../../policy", true, authz.ExitPass, "",
			[]string{`(?m)^\.\./\.\./policy/authz_test\.rego:\d+:$`,
				`(?m)^data\.gatehouse\.authz_test\.test_admin_allows_everything: PASS \(`,
				`(?m)^-{80}$`, `(?m)^PASS: \d+/\d+$`}},
		{"embedded default passes", "", false, authz.ExitPass, "", []string{`(?m)^PASS: \d+/\d+$`}},
		{"failing policy", "testdata/failing", false, authz.ExitTestsFail, "",
			[]string{`(?m)^data\.gatehouse\.authz_test\.test_anonymous_denied: FAIL \(`,
				`(?m)^PASS: 1/2$`, `(?m)^FAIL: 1/2$`}},
		{"failing policy verbose", "testdata/failing", true, authz.ExitTestsFail, "",
			[]string{`(?m)^FAILURES$`, `(?m)^data\.gatehouse\.authz_test\.test_admin_allowed: PASS`, `(?m)^FAIL: 1/2$`}},
		{"syntax error", "testdata/syntax", false, authz.ExitError, "testdata/syntax/authz.rego:5", nil},
		{"missing dir", "testdata/nope", false, authz.ExitError, "nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := authz.RunTests(context.Background(), tt.dir, tt.verbose, &out)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\n%s", code, tt.wantCode, out.String())
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("output does not match %s:\n%s", re, out.String())
				}
			}
			if m := regexp.MustCompile(`(?m)^PASS: (\d+)/(\d+)$`).FindStringSubmatch(out.String()); tt.wantCode == authz.ExitPass && (m == nil || m[1] != m[2]) {
				t.Errorf("not every test passed:\n%s", out.String())
			}
		})
	}
}

func TestRunTestsFS(t *testing.T) {
	var out bytes.Buffer
	code, err := authz.RunTestsFS(context.Background(), policy.FS(), false, &out)
	if code != authz.ExitPass || err != nil {
		t.Fatalf("RunTestsFS = %d, %v\n%s", code, err, out.String())
	}
}
