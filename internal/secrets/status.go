package secrets

import "time"

// Classes of secret with a rotation cadence (config secrets.cadence).
const (
	ClassAPIKeys         = "api_keys" // API keys and service-client secrets
	ClassSigningKeys     = "signing_keys"
	ClassPepper          = "pepper"
	ClassAuditKey        = "audit_key"
	ClassBackupIdentity  = "backup_identity"
	ClassVaultToken      = "vault_token"
	ClassAppRoleSecretID = "approle_secret_id"
	// ClassStorePassword and ClassRedisPassword are the passwords of
	// the PostgreSQL store and of Redis, named by reference in the config.
	ClassStorePassword = "store_password"
	ClassRedisPassword = "redis_password"
	// ClassMasterKey is the master key the sealed store is sealed
	// under: given by the operator, its age is not known to Gatehouse.
	ClassMasterKey = "master_key"
)

// Status is where one secret lives and how old it is against its
// rotation cadence, never its value: what `gatehouse secrets status`
// lists and GET /v1/secrets answers.
type Status struct {
	// Name is the secret's name (pepper, signing-keys, audit-key,
	// backup-identity, vault-token, approle-secret-id) or, for the
	// credentials Gatehouse keeps hashed in its store, the class's
	// oldest in use (api-keys, client-secrets).
	Name     string `json:"name"`
	Class    string `json:"class"`
	Provider string `json:"provider"`
	// Where says where it lives: a file, a variable, a Vault path, the
	// sealed table (with the master key's id), or which credential is
	// the oldest.
	Where   string `json:"where"`
	Version int    `json:"version,omitempty"`
	// CreatedAt is when the value in use was made; nil when the provider
	// cannot tell (an environment variable), and then AgeSeconds and
	// DueAt are nil too and Overdue false.
	CreatedAt      *time.Time `json:"created_at"`
	AgeSeconds     *int64     `json:"age_seconds"`
	CadenceSeconds int64      `json:"cadence_seconds"`
	DueAt          *time.Time `json:"due_at"`
	Overdue        bool       `json:"overdue"`
	// Rotatable says `gatehouse secrets rotate NAME` rotates it; Rotate
	// says how it is rotated otherwise.
	Rotatable bool   `json:"rotatable"`
	Rotate    string `json:"rotate"`
	// KeyID is, for the master key, its id (a hash, not the key), and
	// SealedUnderPrevious how many sealed rows are still under a
	// previous master key: 0 once `gatehouse secrets reseal` has run and
	// the previous key can be removed.
	KeyID               string   `json:"key_id,omitempty"`
	PreviousKeyIDs      []string `json:"previous_key_ids,omitempty"`
	SealedUnderPrevious *int     `json:"sealed_under_previous,omitempty"`
	// PepperVersions are, for the pepper, the versions kept (its
	// Version is the newest, which new credentials hash under) and how
	// many active credentials still hash under each.
	PepperVersions []PepperVersionStatus `json:"pepper_versions,omitempty"`
	// LoadedAt is, for a secret reference (the database and Redis
	// passwords), when this process read the value in use, and
	// ReloadError why the last reading again failed (the value read
	// before stays in use). Warning says what is amiss without being
	// an error: a password inline in the config.
	LoadedAt    *time.Time `json:"loaded_at,omitempty"`
	ReloadError string     `json:"reload_error,omitempty"`
	Warning     string     `json:"warning,omitempty"`
}

// PepperVersionStatus is one version of the pepper in a status listing.
type PepperVersionStatus struct {
	Version   int        `json:"version"`
	CreatedAt *time.Time `json:"created_at"`
	// Credentials is how many active API keys, client secrets, personal
	// access tokens and admin tokens hash under it: an older version is
	// needed until it is 0 (each credential re-hashes under the newest
	// when it is rotated).
	Credentials int `json:"credentials"`
}

// Age fills CreatedAt, AgeSeconds, CadenceSeconds, DueAt and Overdue from
// when the secret was made (zero: unknown), its cadence and now. A
// creation time after now (clocks of two hosts) counts as age 0.
func (s *Status) Age(created time.Time, cadence time.Duration, now time.Time) {
	s.CadenceSeconds = int64(cadence / time.Second)
	s.CreatedAt, s.AgeSeconds, s.DueAt, s.Overdue = nil, nil, nil, false
	if created.IsZero() {
		return
	}
	c := created.UTC()
	age := max(now.Sub(c), 0)
	secs := int64(age / time.Second)
	due := c.Add(cadence)
	s.CreatedAt, s.AgeSeconds, s.DueAt = &c, &secs, &due
	s.Overdue = cadence > 0 && age > cadence
}
