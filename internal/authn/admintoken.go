package authn

import (
	"context"
	"crypto/hmac"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

const adminTokenSetting = "admin_token_hmac"

// AdminToken verifies the bootstrap admin token. Only its HMAC is stored.
type AdminToken struct {
	pepper []byte
	hash   []byte
}

// BootstrapAdminToken makes sure a bootstrap admin token exists. On first
// start it stores the HMAC of fromEnv (GATEHOUSE_ADMIN_TOKEN) or of a newly
// generated token; generated reports the new token, which the caller prints
// once. On later starts fromEnv is ignored and envIgnored says so.
func BootstrapAdminToken(ctx context.Context, st store.Store, pepper []byte, fromEnv string) (a *AdminToken, generated string, envIgnored bool, err error) {
	token := fromEnv
	if token == "" {
		token, _, err = NewToken(PrefixAdminToken)
		if err != nil {
			return nil, "", false, err
		}
	} else if len(token) < 16 {
		return nil, "", false, fmt.Errorf("GATEHOUSE_ADMIN_TOKEN must be at least 16 characters")
	}
	h := hmacSHA256(pepper, token)
	stored, err := st.PutSettingIfAbsent(ctx, adminTokenSetting, h)
	if err != nil {
		return nil, "", false, fmt.Errorf("store admin token: %w", err)
	}
	if stored {
		if fromEnv == "" {
			generated = token
		}
		return &AdminToken{pepper: pepper, hash: h}, generated, false, nil
	}
	h, err = st.GetSetting(ctx, adminTokenSetting)
	if err != nil {
		return nil, "", false, fmt.Errorf("load admin token: %w", err)
	}
	return &AdminToken{pepper: pepper, hash: h}, "", fromEnv != "" && !hmac.Equal(h, hmacSHA256(pepper, fromEnv)), nil
}

// Verify reports whether token is the admin token, in constant time.
func (a *AdminToken) Verify(token string) bool {
	return hmac.Equal(hmacSHA256(a.pepper, token), a.hash)
}

// AdminPrincipal returns the principal that the admin token authenticates as.
func AdminPrincipal() *gatehouse.Principal {
	return gatehouse.NewPrincipal("admin-token", gatehouse.KindAdmin, "bootstrap admin token", []string{gatehouse.ScopeAdmin}, "")
}
