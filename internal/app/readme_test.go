package app_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
)

// readmeCurl returns the README's curl command whose line contains
// marker, continuation lines joined, its trailing comment dropped and
// split into words as a shell would (single and double quotes).
func readmeCurl(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "curl ") {
			continue
		}
		cmd := ""
		for ; i < len(lines); i++ {
			part, more := strings.CutSuffix(strings.TrimSpace(lines[i]), "\\")
			cmd += part + " "
			if !more {
				break
			}
		}
		if words := shellWords(cmd); slices.ContainsFunc(words, func(w string) bool { return strings.Contains(w, marker) }) {
			return words
		}
	}
	t.Fatalf("README.md has no curl command with %q", marker)
	return nil
}

// shellWords splits s into words, up to an unquoted #.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quote, started := byte(0), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '\'' || c == '"':
			quote, started = c, true
		case c == ' ' || c == '\t':
			if started {
				words = append(words, w.String())
				w.Reset()
				started = false
			}
		case c == '#' && !started:
			return words
		default:
			w.WriteByte(c)
			started = true
		}
	}
	if started {
		words = append(words, w.String())
	}
	return words
}

// curlRequest builds the request curl would send for args (-X, -H, -d,
// -u and the URL; -d without a Content-Type header is form-urlencoded, as
// curl sends it), with $NAME replaced from env and the listener's address
// from base.
func curlRequest(t *testing.T, args []string, env map[string]string, base string) *http.Request {
	t.Helper()
	expand := func(s string) string {
		for k, v := range env {
			s = strings.ReplaceAll(s, "$"+k, v)
		}
		return strings.ReplaceAll(s, "http://127.0.0.1:8080", base)
	}
	method, url, user := "", "", ""
	var headers, data []string
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-X" || a == "-H" || a == "-d" || a == "-u":
			i++
			v := expand(args[i])
			switch a {
			case "-X":
				method = v
			case "-H":
				headers = append(headers, v)
			case "-d":
				data = append(data, v)
			case "-u":
				user = v
			}
		case strings.HasPrefix(a, "["): // an optional part, left out
			for !strings.HasSuffix(args[i], "]") {
				i++
			}
		default:
			url = expand(a)
		}
	}
	if method == "" {
		method = "GET"
		if data != nil {
			method = "POST"
		}
	}
	req, err := http.NewRequest(method, url, strings.NewReader(strings.Join(data, "&")))
	if err != nil {
		t.Fatal(err)
	}
	if data != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	if user != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user)))
	}
	return req
}

// TestREADMECurlExamples runs the README's curl examples of the public
// listener's endpoints as curl would send them.
func TestREADMECurlExamples(t *testing.T) {
	h := MustStart(t)
	key := h.createKey(map[string]any{"name": "agent", "scopes": []string{"tools:execute:web_search"}})
	var c struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
	}
	if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": "billing", "scopes": []string{"read:signals"}}, &c); code != 201 {
		t.Fatalf("create client: %d", code)
	}
	env := map[string]string{"KEY": key.Key, "CLIENT_ID": c.ClientID, "CLIENT_SECRET": c.Secret}
	for _, marker := range []string{"/v1/authorize", "/oauth/token"} {
		t.Run(marker, func(t *testing.T) {
			req := curlRequest(t, readmeCurl(t, marker), env, h.base)
			res, err := (&http.Client{Transport: h.transport()}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("the README's %s example, as curl sends it: %d, want 200", marker, res.StatusCode)
			}
		})
	}
}
