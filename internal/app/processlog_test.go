package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestProcessLogAsync: without a Logger, the process log (the access log
// among it) goes through the asynchronous writer and the redactor to
// Stderr, one JSON object a line, and the admin /health/ready details say
// how many lines the writer dropped.
func TestProcessLogAsync(t *testing.T) {
	up := newUpstream(t)
	yml := fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n", t.TempDir()) +
		strings.ReplaceAll(testRoutes, "{{UP}}", up.URL)
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	a, err := app.New(context.Background(), cfg, app.Options{Getenv: func(string) string { return "" }, Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	get := func(url string, headers ...string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	const secret = "gk_live_0123456789abcdefghijklmnop"
	get("http://"+a.Addr()+"/api/v1/signals/x", "Authorization: Bearer "+secret)
	if body := get("http://" + a.AdminAddr() + "/health/ready"); !strings.Contains(body, `"log":{"ok":true,"detail":"0 lines dropped since start"}`) {
		t.Errorf("admin ready body %s", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Shutdown(ctx)
	out := stderr.String()
	access := 0
	for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		var rec struct {
			Msg     string
			Gateway struct{ Path string }
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if rec.Msg == "request" && rec.Gateway.Path == "/api/v1/signals/x" {
			access++
		}
	}
	if access != 1 || strings.Contains(out, "0123456789abcdef") {
		t.Fatalf("%d access lines for the request (want 1), or the credential leaked:\n%s", access, out)
	}
}
