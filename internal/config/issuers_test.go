package config_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestExternalIssuersConfig: external issuer errors name the file, line
// and field; plain http:// key sets are refused in prod except on
// loopback; scopes must be mapped or listed.
func TestExternalIssuersConfig(t *testing.T) {
	const head = "auth:\n  external_issuers:\n    - issuer: https://idp.example\n      audiences: [gatehouse]\n"
	tests := []struct {
		name string
		yaml string
		want string // "" = valid
	}{
		{"https jwks_url", head + "      jwks_url: https://idp.example/jwks\n      allowed_scopes: [read]\n", ""},
		{"discovery", head + "      scope_map: {read: [read:signals], boss: [admin]}\n", ""},
		{"plain http jwks_url in prod", head + "      allowed_scopes: [read]\n      jwks_url: http://idp.example/jwks\n",
			"g.yaml:6: auth.external_issuers[0].jwks_url: plain http:// is refused in prod mode except on loopback"},
		{"plain http jwks_url on loopback", head + "      allowed_scopes: [read]\n      jwks_url: http://127.0.0.1:9000/jwks\n", ""},
		{"plain http jwks_url in dev", "mode: dev\n" + head + "      allowed_scopes: [read]\n      jwks_url: http://idp.example/jwks\n", ""},
		{"plain http discovery in prod", strings.Replace(head, "https://idp", "http://idp", 1) + "      allowed_scopes: [read]\n",
			"g.yaml:3: auth.external_issuers[0].issuer: with no jwks_url the key set is discovered from the issuer: plain http://"},
		{"no scope mapping", head + "      jwks_url: https://idp.example/jwks\n",
			"g.yaml:3: auth.external_issuers[0].scope_map: an external issuer's scopes are not trusted as they are"},
		{"allowed admin", head + "      allowed_scopes: [read, admin]\n",
			"g.yaml:5: auth.external_issuers[0].allowed_scopes[1]: admin passes only through an explicit scope_map entry"},
		{"mapped to a scope with a space", head + "      scope_map:\n        read: [\"read admin\"]\n",
			"g.yaml:6: auth.external_issuers[0].scope_map.read:"},
		{"HMAC alg", head + "      allowed_scopes: [read]\n      allowed_algs: [RS256, HS256]\n",
			"g.yaml:6: auth.external_issuers[0].allowed_algs[1]: must be one of RS256"},
		{"unknown key", head + "      scope_mapping: {}\n", `unknown key "scope_mapping"`},
		{"issuer twice", head + "      allowed_scopes: [read]\n" + strings.TrimPrefix(head, "auth:\n  external_issuers:\n") + "      allowed_scopes: [read]\n",
			`g.yaml:6: auth.external_issuers[1].issuer: "https://idp.example" is configured twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("g.yaml", []byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("no error for:\n%s", tt.yaml)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}
