package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/redact"
)

func TestHandler(t *testing.T) {
	r := redact.New()
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil)))
	key := mustToken(t, "gk_")
	log = log.With("client_secret", "plain-looking", "component", "gateway")
	log.WithGroup("req").Info("auth with "+key,
		"password", "hunter2",
		"header", "Bearer "+jwtHS256,
		"count", 3,
		"err", errors.New("bad card "+visa),
		slog.Group("user", "api_key", "k", "name", "bob"),
	)
	out := buf.String()
	for _, s := range []string{key, "hunter2", jwtHS256, visa, "plain-looking", `"k"`} {
		if strings.Contains(out, s) {
			t.Errorf("%q survived: %s", s, out)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out)
	}
	req := m["req"].(map[string]any)
	if req["password"] != "[REDACTED:json_secret]" || req["count"] != 3.0 || req["user"].(map[string]any)["name"] != "bob" {
		t.Errorf("unexpected record: %s", out)
	}
	if m["component"] != "gateway" {
		t.Errorf("WithAttrs lost: %s", out)
	}
}

func TestWriterUnderJSONHandler(t *testing.T) {
	r := redact.New()
	var buf bytes.Buffer
	w := r.Writer(&buf)
	log := slog.New(slog.NewJSONHandler(w, nil))
	log.Info("login", "password", "hunter2", "payload", map[string]string{"token": "abc123"})
	// Each record ends in a newline, which starts nothing: no Close
	// needed for a whole line to come out.
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Contains(out, "hunter2") || strings.Contains(out, "abc123") {
		t.Errorf("got %q", out)
	}
	if !json.Valid([]byte(out)) {
		t.Errorf("not JSON: %s", out)
	}
}
