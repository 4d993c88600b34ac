package config_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestExternalIssuersConfig: what an external issuer may be configured
// with; what it may not is in TestProblems.
func TestExternalIssuersConfig(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"https jwks_url", issuer + "      jwks_url: https://idp.example/jwks\n      allowed_scopes: [read]\n"},
		{"discovery", issuer + "      scope_map: {read: [read:signals], boss: [admin]}\n"},
		{"plain http jwks_url on loopback", issuer + "      allowed_scopes: [read]\n      jwks_url: http://127.0.0.1:9000/jwks\n"},
		{"plain http jwks_url in dev", "mode: dev\n" + issuer + "      allowed_scopes: [read]\n      jwks_url: http://idp.example/jwks\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := config.Parse("g.yaml", []byte(tt.yaml)); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
