package s3_test

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/backup/desttest"
	"github.com/gatehouse/gatehouse/internal/backup/s3"
)

// defaultEndpoint is where scripts/ensure-s3.sh runs gofakes3, a real
// S3-speaking server process.
const defaultEndpoint = "http://127.0.0.1:9878"

// MustEndpoint returns the S3 endpoint of GATEHOUSE_TEST_S3 (default
// defaultEndpoint), skipping tb loudly when nothing answers there, or
// failing it when CI=true.
func MustEndpoint(tb testing.TB) string {
	tb.Helper()
	e := os.Getenv("GATEHOUSE_TEST_S3")
	if e == "" {
		e = defaultEndpoint
	}
	u, err := url.Parse(e)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		msg := "!!! no S3 server at " + e + ": " + err.Error() + "\n!!! SKIPPING the S3 tests. Run scripts/ensure-s3.sh or set GATEHOUSE_TEST_S3."
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "\n!!! CI=true: a missing S3 server is a failure.")
		}
		tb.Skip(msg)
	}
	c.Close()
	return e
}

// newBucketURL names a fresh bucket (gofakes3 makes it on first use).
func newBucketURL(tb testing.TB, endpoint string) string {
	var b [4]byte
	rand.Read(b[:])
	return "s3://gh-test-" + hex.EncodeToString(b[:]) + "/backups/deployment-a?endpoint=" + url.QueryEscape(endpoint)
}

func env(k string) string {
	return map[string]string{"AWS_ACCESS_KEY_ID": "gatehouse-test", "AWS_SECRET_ACCESS_KEY": "gatehouse-test-secret"}[k]
}

func TestS3Destination(t *testing.T) {
	endpoint := MustEndpoint(t)
	desttest.Run(t, func(t *testing.T) backup.Destination {
		s, err := s3.Open(newBucketURL(t, endpoint), env)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"s3://bucket/prefix", ""},
		{"s3://bucket/p?endpoint=https://s3.example:9000&region=eu-west-1", ""},
		{"s3://bucket?endpoint=http://127.0.0.1:9000", ""},
		{"https://bucket/prefix", "must be s3://bucket/prefix"},
		{"s3://key:secret@bucket/p", "must be s3://bucket/prefix"},
		{"s3://bucket/p?endpoint=http://s3.example", "plain http beyond this host"},
		{"s3://bucket/p?endpoint=ftp://s3.example", "endpoint must be http(s)://host[:port]"},
	} {
		s, err := s3.Open(tc.url, env)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Open(%q) = %v; want error %q", tc.url, err, tc.want)
		}
		if err == nil && !strings.HasPrefix(s.Location("x"), "s3://bucket/") {
			t.Errorf("location %s", s.Location("x"))
		}
	}
}
