package authn

import (
	"crypto/x509"
	"errors"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// CertPrincipal maps a verified client certificate to a principal: by the
// subject's common name, or by a DNS or URI subject alternative name (such
// as a SPIFFE id).
type CertPrincipal struct {
	Subject string   `yaml:"subject"` // common name
	SAN     string   `yaml:"san"`     // DNS name or URI
	ID      string   `yaml:"id"`
	Scopes  []string `yaml:"scopes"`
	Tier    string   `yaml:"tier"`
}

// Validate checks a mapping.
func (c CertPrincipal) Validate() error {
	if (c.Subject == "") == (c.SAN == "") {
		return errors.New("give exactly one of subject or san")
	}
	if c.ID == "" {
		return errors.New("id: is required")
	}
	for _, s := range c.Scopes {
		if err := ValidateScope(s); err != nil {
			return err
		}
	}
	return nil
}

// CertPrincipals authenticates verified client certificates.
type CertPrincipals struct {
	rules []certRule
}

type certRule struct {
	CertPrincipal
	p *gatehouse.Principal
}

// NewCertPrincipals compiles the mappings.
func NewCertPrincipals(m []CertPrincipal) *CertPrincipals {
	c := &CertPrincipals{}
	for _, r := range m {
		c.rules = append(c.rules, certRule{r, gatehouse.NewPrincipal(r.ID, gatehouse.KindCert, r.Subject+r.SAN, r.Scopes, r.Tier)})
	}
	return c
}

// ErrCertNotMapped refuses a verified certificate no mapping names.
var ErrCertNotMapped = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "client certificate is not mapped to a principal")

// AuthenticateCert returns the principal of a certificate that the TLS
// handshake already verified against the client CAs.
func (c *CertPrincipals) AuthenticateCert(cert *x509.Certificate) (*gatehouse.Principal, error) {
	for _, r := range c.rules {
		switch {
		case r.Subject != "" && cert.Subject.CommonName == r.Subject:
			return r.p, nil
		case r.SAN != "" && slices.Contains(cert.DNSNames, r.SAN):
			return r.p, nil
		case r.SAN != "":
			for _, u := range cert.URIs {
				if u.String() == r.SAN {
					return r.p, nil
				}
			}
		}
	}
	return nil, ErrCertNotMapped
}
