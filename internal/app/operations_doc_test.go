package app_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestOperationsDocListsReadinessChecks holds the readiness table of
// docs/operations.md to what a running process reports on the admin
// /health/ready, on the defaults and with Redis: every check it shows is
// in the table.
func TestOperationsDocListsReadinessChecks(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // check → its "critical" column
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:<>]+)` \\| ([^|]+) \\|").FindAllStringSubmatch(string(b), -1) {
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	if len(rows) < 8 {
		t.Fatalf("docs/operations.md: found %d readiness rows; is the table still there?", len(rows))
	}
	for _, extra := range []string{"", "ratelimit: {backend: redis, redis_url: \"redis://127.0.0.1:6379\"}\n"} {
		h := MustStartWith(t, extra)
		_, checks := readiness(t, h)
		for name := range checks {
			row := name
			if i := strings.Index(name, ":"); i > 0 {
				row = name[:i+1] + "<issuer>"
			}
			if _, ok := rows[row]; !ok {
				t.Errorf("docs/operations.md's readiness table lacks the check %q", name)
			}
		}
		if len(checks) < 8 {
			t.Errorf("only %d checks reported: %v", len(checks), checks)
		}
	}
}
