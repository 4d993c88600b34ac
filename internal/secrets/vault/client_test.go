package vault_test

import (
	"testing"

	"github.com/hashicorp/vault/api"
)

// newClient is the official client as an operator's tooling would use it.
func newClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}
