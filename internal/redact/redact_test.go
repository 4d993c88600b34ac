package redact_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/redact"
)

// Fixed fake secrets in each format. None is a real credential.
const (
	jwtHS256   = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	jwtNone    = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."
	awsKey     = "AKIAIOSFODNN7EXAMPLE"
	awsSTS     = "ASIAY34FZKBOKMUTVV7A"
	awsSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	ghpToken   = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	ghsToken   = "ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	ghPAT      = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
	slackBot   = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackUser  = "xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef"
	slackHook  = "hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	visa       = "4111111111111111"
	visaSpaced = "4111 1111 1111 1111"
	mcDashed   = "5555-5555-5555-4444"
	amex       = "378282246310005"
	amexSpaced = "3782 822463 10005"
	discover   = "6011111111111117"
)

// mustToken returns a Gatehouse credential with the given prefix.
func mustToken(tb testing.TB, prefix string) string {
	tb.Helper()
	tok, _, err := authn.NewToken(prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

var (
	pemOnce sync.Once
	pemRSA  string
	pemEd   string
)

// mustPEM returns an RSA (PKCS#1) and an Ed25519 (PKCS#8) private key block.
func mustPEM(tb testing.TB) (rsaPEM, edPEM string) {
	tb.Helper()
	pemOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		pemRSA = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
		_, ek, _ := ed25519.GenerateKey(rand.Reader)
		der, err := x509.MarshalPKCS8PrivateKey(ek)
		if err != nil {
			panic(err)
		}
		pemEd = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	return pemRSA, pemEd
}

func marker(k redact.Kind) string { return "[REDACTED:" + string(k) + "]" }

func TestDetects(t *testing.T) {
	rsaPEM, edPEM := mustPEM(t)
	type tc struct {
		name, in, want string
	}
	cases := []tc{
		{"api key", "Authorization: Bearer " + "GK", "Authorization: Bearer " + marker(redact.KindGatehouseKey)},
		{"jwt", "token=" + jwtHS256 + "&x=1", "token=" + marker(redact.KindJWT) + "&x=1"},
		{"jwt alg none", "t " + jwtNone + " end", "t " + marker(redact.KindJWT) + " end"},
		{"jwt end of sentence", "see " + jwtHS256 + ".", "see " + marker(redact.KindJWT) + "."},
		{"aws access key", "key " + awsKey + "\n", "key " + marker(redact.KindAWSAccessKey) + "\n"},
		{"aws sts key", "(" + awsSTS + ")", "(" + marker(redact.KindAWSAccessKey) + ")"},
		{"aws secret env", "AWS_SECRET_ACCESS_KEY=" + awsSecret + "\n", "AWS_SECRET_ACCESS_KEY=" + marker(redact.KindAWSSecretKey) + "\n"},
		{"aws secret ini", "aws_secret_access_key = " + awsSecret, "aws_secret_access_key = " + marker(redact.KindAWSSecretKey)},
		{"aws secret yaml quoted", "aws-secret-access-key: '" + awsSecret + "'", "aws-secret-access-key: '" + marker(redact.KindAWSSecretKey) + "'"},
		{"github classic", "x " + ghpToken + " y", "x " + marker(redact.KindGitHubToken) + " y"},
		{"github app", ghsToken, marker(redact.KindGitHubToken)},
		{"github fine-grained", "GITHUB_TOKEN=" + ghPAT, "GITHUB_TOKEN=" + marker(redact.KindGitHubToken)},
		{"slack bot", "slack " + slackBot, "slack " + marker(redact.KindSlackToken)},
		{"slack user", slackUser + ",", marker(redact.KindSlackToken) + ","},
		{"slack webhook", "url: https://" + slackHook + "\n", "url: https://" + marker(redact.KindSlackToken) + "\n"},
		{"pem rsa", "key:\n" + rsaPEM + "done", "key:\n" + marker(redact.KindPrivateKey) + "\ndone"},
		{"pem pkcs8", edPEM, marker(redact.KindPrivateKey) + "\n"},
		{"pem in json", `{"k":"` + strings.ReplaceAll(edPEM, "\n", `\n`) + `"}`, `{"k":"` + marker(redact.KindPrivateKey) + `\n"}`},
		{"pem without end", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oqGQ0xp5ahXuoAoGCCqG\n", marker(redact.KindPrivateKey)},
		{"json password", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"` + marker(redact.KindJSONSecret) + `"}`},
		{"json spaced", `{ "Client_Secret" :  "abc\"def" }`, `{ "Client_Secret" :  "` + marker(redact.KindJSONSecret) + `" }`},
		{"json camel", `{"accessToken":"x1","refresh_token":"x2","apiKey":"x3","api-key":"x4","passwd":"x5","Authorization":"Basic Zm9v","db.password":"x6"}`,
			`{"accessToken":"` + marker(redact.KindJSONSecret) + `","refresh_token":"` + marker(redact.KindJSONSecret) + `","apiKey":"` + marker(redact.KindJSONSecret) + `","api-key":"` + marker(redact.KindJSONSecret) + `","passwd":"` + marker(redact.KindJSONSecret) + `","Authorization":"` + marker(redact.KindJSONSecret) + `","db.password":"` + marker(redact.KindJSONSecret) + `"}`},
		{"escaped json in a string", `{"msg":"body {\"user\":\"bob\", \"password\" : \"hun\\\"ter2\"}"}`,
			`{"msg":"body {\"user\":\"bob\", \"password\" : \"` + marker(redact.KindJSONSecret) + `\"}"}`},
		{"escaped json, value with backslash", `"{\"token\":\"a\\\\\",\"b\":1}"`, `"{\"token\":\"` + marker(redact.KindJSONSecret) + `\",\"b\":1}"`},
		{"bearer opaque", "Authorization: Bearer 8f2a9c1e7b4d4e0f9a6b3c2d1e0f9a8b\r\n", "Authorization: Bearer " + marker(redact.KindBearerToken) + "\r\n"},
		{"bearer jwt keeps kind", "authorization: bearer " + jwtHS256, "authorization: bearer " + marker(redact.KindJWT)},
		{"bearer github keeps kind", "BEARER  " + ghpToken, "BEARER  " + marker(redact.KindGitHubToken)},
		{"basic auth", "Authorization: Basic dXNlcjpwYXNzd29yZA==\n", "Authorization: Basic " + marker(redact.KindBasicAuth) + "\n"},
		{"query access_token", "GET /cb?code=abc&access_token=ya29.a0AfH6SM-x_y&state=1 HTTP/1.1", "GET /cb?code=abc&access_token=" + marker(redact.KindQuerySecret) + "&state=1 HTTP/1.1"},
		{"fragment token", `<a href="https://app/#id_token=abc.def&x=1">`, `<a href="https://app/#id_token=` + marker(redact.KindQuerySecret) + `&x=1">`},
		{"form body", "password=hunter2&user=bob&client_secret=s%3Dx", "password=" + marker(redact.KindQuerySecret) + "&user=bob&client_secret=" + marker(redact.KindQuerySecret)},
		{"env lines", "HOME=/root\nDB_PASSWORD=pa55\nAPI_TOKEN=" + ghpToken + "\n", "HOME=/root\nDB_PASSWORD=" + marker(redact.KindQuerySecret) + "\nAPI_TOKEN=" + marker(redact.KindGitHubToken) + "\n"},
		{"json non-string untouched", `{"token":null,"secret":true,"password":12}`, `{"token":null,"secret":true,"password":12}`},
		{"json empty untouched", `{"password":""}`, `{"password":""}`},
		{"json page token untouched", `{"nextPageToken":"abc","token_type":"Bearer"}`, `{"nextPageToken":"abc","token_type":"Bearer"}`},
		{"card contiguous", "card " + visa + " ok", "card " + marker(redact.KindCardNumber) + " ok"},
		{"card spaced", "card: " + visaSpaced + ".", "card: " + marker(redact.KindCardNumber) + "."},
		{"card dashed", mcDashed, marker(redact.KindCardNumber)},
		{"card amex", "amex " + amex, "amex " + marker(redact.KindCardNumber)},
		{"card amex grouped", "amex " + amexSpaced, "amex " + marker(redact.KindCardNumber)},
		{"card discover json", `{"pan":"` + discover + `"}`, `{"pan":"` + marker(redact.KindCardNumber) + `"}`},
		{"card as JSON number", `{"pan": ` + visa + `, "n":1}`, `{"pan": "` + marker(redact.KindCardNumber) + `", "n":1}`},
		{"card after colon in text", "card:" + visa, "card:" + marker(redact.KindCardNumber)},
		{"card with expiry", visa + " 12/27", marker(redact.KindCardNumber) + " 12/27"},
		{"card grouped with expiry", visaSpaced + " 12/27", marker(redact.KindCardNumber) + " 12/27"},
	}
	for _, p := range []string{"gk_", "gadm_", "gpat_", "gcs_"} {
		tok := mustToken(t, p)
		cases = append(cases, tc{"gatehouse " + p, "key=" + tok + "&", "key=" + marker(redact.KindGatehouseKey) + "&"})
	}
	cases[0].in = strings.Replace(cases[0].in, "GK", mustToken(t, "gk_"), 1)
	r := redact.New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.String(c.in); got != c.want {
				t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			if got := string(r.Bytes([]byte(c.in))); got != c.want {
				t.Errorf("Bytes(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestNoFalsePositives(t *testing.T) {
	r := redact.New()
	cases := map[string]string{
		"uuid":          `{"id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","trace":"4bf92f3577b34da6a3ce929d0e0e4736"}`,
		"sha256":        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"git sha":       "commit 99229d0e3b0c44298fc1c149afbf4c8996fb9242",
		"numbers":       "took 1234 ms, 5678 bytes, total=987654321 id=42 price=19.99",
		"unix nanos":    `{"ts":1732312123456789012,"ms":1732312123456}`,
		"float":         "ratio 0.4111111111111111 and 3.4111111111111111",
		"dates":         "2026-11-22T22:08:43.123456Z 2026-11-22 22:08:43 +0000",
		"phone":         "call +1 555-123-4567 or 0044 20 7946 0958",
		"ipv4":          "from 192.168.100.200:8080 to 10.0.0.1",
		"non-luhn 16":   "order 4111111111111112 and 5555 5555 5555 5555",
		"long digits":   "account 41111111111111110000 ref",
		"base64 json":   "data eyJmb28iOiJiYXIifQ== and eyJmb28iOiJiYXIifQ.eyJhIjoxfQ.c2ln",
		"base64":        "aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYSBzZWNyZXQ=",
		"fake gk":       "gk_abcdefghijklmnop_0123456789abcdefghijABCDEFGHIJKLmnopqr",
		"words":         "the gateway has great hooks. axolotl xoxo ghost github_repo AKIA short -----BEGIN CERTIFICATE-----",
		"json keys":     `{"token_count":5,"secret_name":"db","password_policy":{"min":12},"key":"value","tokens":"many"}`,
		"aws id label":  "aws_access_key_id=" + awsKey[:4] + "x",
		"aws short":     "AKIA1234",
		"aws in word":   "XAKIAIOSFODNN7EXAMPLE",
		"ghp short":     "ghp_short",
		"xox short":     "xoxb-123",
		"public key":    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
		"dash rule":     "-----------------------------",
		"digit columns": "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6",
		"hex digits":    "deadbeef4111111111111111cafe",
		"bearer prose":  "Bearer authentication uses Bearer tokens; see the bearer token spec 2",
		"query plain":   "/search?q=token&page=2&sort=secret&next_page_token=abc",
		"basic prose":   "Basic usage: basically Basic authentication, Basic dGVzdA== is not user:pass",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if got := r.String(in); got != in {
				t.Errorf("changed\n in %q\nout %q", in, got)
			}
		})
	}
}

func TestJSONStaysValid(t *testing.T) {
	r := redact.New()
	docs := []string{
		`{"password":"p\"w\\d\u00e9","nested":{"client_secret":"s","list":[{"token":"t"}]},"n":1}`,
		`[{"api_key":"` + strings.Repeat("a", 20000) + `"}]`,
		`{"api_key":"` + strings.Repeat(`\\`, 9000) + `"}`,
		`{"authorization":"Bearer ` + jwtHS256 + `","card":"` + visa + `"}`,
		`{"msg":"got {\"client_secret\":\"s\\\"q\",\"n\":2}"}`,
		"{\n  \"pan\": " + visa + ",\n  \"cards\": [\"" + amex + "\"]\n}",
	}
	for i, doc := range docs {
		if !json.Valid([]byte(doc)) {
			t.Fatalf("doc %d: test input is not JSON", i)
		}
		out := r.Bytes([]byte(doc))
		if !json.Valid(out) {
			t.Errorf("doc %d: output is not valid JSON: %.200s", i, out)
		}
		if bytes.Equal(out, []byte(doc)) {
			t.Errorf("doc %d: nothing redacted", i)
		}
		for _, s := range []string{"p\\\"w", jwtHS256, visa, `"s"`, `"t"`} {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("doc %d: %q survived: %s", i, s, out)
			}
		}
	}
}

func TestOptionsShortKey(t *testing.T) {
	r := redact.New(redact.WithJSONKeys("X"))
	if got := r.String(`{"a_x":"v","x":"w"}`); got != `{"a_x":"`+marker(redact.KindJSONSecret)+`","x":"`+marker(redact.KindJSONSecret)+`"}` {
		t.Errorf("got %s", got)
	}
}

func TestOptions(t *testing.T) {
	r := redact.New(redact.WithoutKinds(redact.KindCardNumber), redact.WithJSONKeys("session_id"))
	in := `{"sessionId":"abc","card":"` + visa + `"}`
	want := `{"sessionId":"` + marker(redact.KindJSONSecret) + `","card":"` + visa + `"}`
	if got := r.String(in); got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

func TestStringNoAlloc(t *testing.T) {
	r := redact.New()
	s := "plain log line without anything interesting 1 2 3"
	if n := testing.AllocsPerRun(100, func() { _ = r.String(s) }); n != 0 {
		t.Errorf("String on clean text allocated %v times", n)
	}
}

func TestLengthLimits(t *testing.T) {
	r := redact.New()
	longJWT := "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("A", 20<<10) + ".sig"
	longJSON := `{"token":"` + strings.Repeat("x", 20<<10) + `"}`
	cases := []struct {
		name, in, prefix string
	}{
		{"jwt beyond limit is cut, not passed", longJWT, marker(redact.KindJWT) + "AAAA"},
		{"json value beyond limit", longJSON, `{"token":"` + marker(redact.KindJSONSecret) + "xxxx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.String(c.in)
			if !strings.HasPrefix(got, c.prefix) {
				t.Errorf("got %.80q…, want prefix %.80q", got, c.prefix)
			}
			if got2 := writeSplit(t, r, c.in, len(c.in)/3, 2*len(c.in)/3); got2 != got {
				t.Errorf("stream differs from one-shot")
			}
		})
	}
}

func TestZeroRedactorPassesThrough(t *testing.T) {
	var r redact.Redactor
	in := `{"password":"x"} ` + visa + " " + jwtHS256
	if got := r.String(in); got != in {
		t.Errorf("got %q", got)
	}
}
