package compliance

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// Status is the outcome of a check or of a control.
type Status string

// The statuses of a check. Manual means the data to decide it is not in
// the system: the finding says what a person must provide.
const (
	StatusPass          Status = "pass"
	StatusFail          Status = "fail"
	StatusManual        Status = "manual"
	StatusNotApplicable Status = "not_applicable"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPass, StatusFail, StatusManual, StatusNotApplicable:
		return true
	}
	return false
}

// Thresholds are the limits the checks hold the state to. The zero value
// of a field means its default (DefaultThresholds).
type Thresholds struct {
	KeyRotation        time.Duration `json:"key_rotation"`         // API keys, client secrets, PATs: 90 days
	SigningKeyRotation time.Duration `json:"signing_key_rotation"` // token signing keys: 180 days
	AdminUnused        time.Duration `json:"admin_unused"`         // admin credentials unused: 90 days
	AuditRetention     time.Duration `json:"audit_retention"`      // at least 90 days
	ReviewEvery        time.Duration `json:"review_every"`         // access reviews: 90 days
	IncidentReviewDays int           `json:"incident_review_days"` // post-incident review: 5 business days
	RestoreTestEvery   time.Duration `json:"restore_test_every"`   // restore tests: 30 days
	RevocationSLA      time.Duration `json:"revocation_sla"`       // revocation propagation: 5s
	ScanEvery          time.Duration `json:"scan_every"`           // dependency scans: 7 days
}

// DefaultThresholds are the limits of the security baseline.
func DefaultThresholds() Thresholds {
	const day = 24 * time.Hour
	return Thresholds{
		KeyRotation: 90 * day, SigningKeyRotation: 180 * day, AdminUnused: 90 * day,
		AuditRetention: 90 * day, ReviewEvery: 90 * day, IncidentReviewDays: 5,
		RestoreTestEvery: 30 * day, RevocationSLA: 5 * time.Second, ScanEvery: 7 * day,
	}
}

// withDefaults fills the zero fields of t from DefaultThresholds.
func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.KeyRotation, d.KeyRotation)
	set(&t.SigningKeyRotation, d.SigningKeyRotation)
	set(&t.AdminUnused, d.AdminUnused)
	set(&t.AuditRetention, d.AuditRetention)
	set(&t.ReviewEvery, d.ReviewEvery)
	set(&t.RestoreTestEvery, d.RestoreTestEvery)
	set(&t.RevocationSLA, d.RevocationSLA)
	set(&t.ScanEvery, d.ScanEvery)
	if t.IncidentReviewDays <= 0 {
		t.IncidentReviewDays = d.IncidentReviewDays
	}
	return t
}

// Period is the time a report covers: [From, To).
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether t falls in the period.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// State is what the checks read: the live state of one deployment as the
// process serving it sees it, and the audit entries of the period that
// bear on the controls. The app package fills it; tests build it directly.
type State struct {
	Now        time.Time
	Period     Period
	Mode       string // prod | dev
	Thresholds Thresholds

	// ConfigSHA256 is the hash of the config serve loaded ("" for the
	// built-in defaults).
	ConfigSHA256 string
	Routes       []Route
	Policy       Policy
	Credentials  []Credential
	Users        []User
	SigningKeys  []SigningKey
	// Listeners are the listeners serving, each probed by a request to
	// itself.
	Listeners []Listener
	Limits    Limits
	// AuditRetention is audit.retention (0: forever).
	AuditRetention time.Duration
	Audit          AuditHealth
	// Backup is the backup configuration; nil: backups are not configured.
	Backup *Backup
	// Settings is the authentication settings in force, as JSON.
	Settings map[string]any
	// SettingsDefault says the settings in force are a new deployment's.
	SettingsDefault bool

	// Events are the security-relevant audit entries (not per-request
	// events), oldest first: of the period, and the latest of each type
	// before it that a check needs (config.loaded, backup.*, reviews).
	Events []audit.Entry
	// Traffic counts per-request events of the period by day.
	Traffic []DayCount

	Reviews   []Review
	Incidents []Incident

	// Secrets is every secret the deployment uses with its age against
	// its rotation cadence (what gatehouse secrets status lists), never a
	// value; nil: not read, and SecretsError says why when reading failed.
	Secrets      []Secret
	SecretsError string
}

// Secret is one secret of the deployment and its rotation age.
type Secret struct {
	Name     string `json:"name"`
	Class    string `json:"class"`
	Provider string `json:"provider"`
	// CreatedAt is when the value in use was made; zero when the provider
	// cannot tell (an environment variable).
	CreatedAt time.Time     `json:"created_at,omitzero"`
	Cadence   time.Duration `json:"cadence"`
	Overdue   bool          `json:"overdue"`
	// Rotate says how it is rotated.
	Rotate string `json:"rotate,omitempty"`
}

// Route is one configured route as the checks see it.
type Route struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Methods []string `json:"methods,omitempty"`
	Public  bool     `json:"public"`
	Scopes  []string `json:"scopes"`
	Redact  bool     `json:"redact"`
	// ProbeStatus is the HTTP status a request without credentials got
	// from the public listener (routes not public only); 0: not probed.
	ProbeStatus int `json:"probe_status,omitempty"`
}

// Policy is the authorization policy serving.
type Policy struct {
	Ready     bool   `json:"ready"`
	Source    string `json:"source"`
	Revision  string `json:"revision"`
	SHA256    string `json:"sha256"`
	Tests     int    `json:"tests"`
	LastError string `json:"last_error,omitempty"`
	// Probes are decisions asked of the serving policy for callers that
	// must be refused (anonymous, no scopes, unknown route): Allowed
	// true for any is a fail.
	Probes []PolicyProbe `json:"probes"`
}

// PolicyProbe is one decision asked of the policy.
type PolicyProbe struct {
	Case    string `json:"case"`
	Allowed bool   `json:"allowed"`
	Error   string `json:"error,omitempty"`
}

// Credential is an API key, OAuth client or personal access token.
type Credential struct {
	Kind       string    `json:"kind"` // api_key | client | pat
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Owner      string    `json:"owner,omitempty"` // a PAT's user
	Scopes     []string  `json:"scopes"`
	Role       string    `json:"role,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by,omitempty"`
	RotatedAt  time.Time `json:"rotated_at,omitzero"` // a client's last secret rotation
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	// HashLen is the length of the stored secret hash (32: HMAC-SHA-256);
	// PlainStored is set if the store held anything else.
	HashLen int `json:"hash_len"`
}

// Active reports whether the credential is usable at now (not revoked,
// not expired); revoked ones are not listed in State.
func (c Credential) Active(now time.Time) bool {
	return c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt)
}

// Admin reports whether the credential carries admin power.
func (c Credential) Admin() bool {
	if c.Role == "admin" {
		return true
	}
	for _, s := range c.Scopes {
		if s == "admin" {
			return true
		}
	}
	return false
}

// User is a person who signs in to the admin API.
type User struct {
	Username   string    `json:"username"`
	Role       string    `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by,omitempty"`
	Disabled   bool      `json:"disabled"`
	TOTP       bool      `json:"totp"`
	LastSeenAt time.Time `json:"last_seen_at,omitzero"`
}

// SigningKey is a token signing key.
type SigningKey struct {
	KID       string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	Active    bool      `json:"active"`
}

// Listener is one listener and what a request to it showed.
type Listener struct {
	Name       string `json:"name"` // public | admin
	Address    string `json:"address"`
	TLS        bool   `json:"tls"`
	MinVersion string `json:"min_version,omitempty"`
	// Loopback listeners are reachable from this host only.
	Loopback bool `json:"loopback"`
	// Probe is what a request to the listener answered; nil: not probed.
	Probe *Probe `json:"probe,omitempty"`
}

// Probe is the answer of a listener to a request from the checks.
type Probe struct {
	Error string `json:"error,omitempty"`
	// TLSVersion is the version negotiated ("" on plain HTTP);
	// RefusedTLS11 says that a TLS 1.1 handshake was refused.
	TLSVersion   string            `json:"tls_version,omitempty"`
	RefusedTLS11 bool              `json:"refused_tls11,omitempty"`
	Headers      map[string]string `json:"headers"`
}

// Limits are the rate limits and lockouts in force.
type Limits struct {
	DefaultRequests    int           `json:"default_requests"`
	DefaultPer         time.Duration `json:"default_per"`
	Backend            string        `json:"backend"`
	LockoutFailures    int           `json:"lockout_max_failures"`
	LockoutWindow      time.Duration `json:"lockout_window"`
	PreAuthFailures    int           `json:"preauth_failures"` // <0: off
	SignInPerSource    int           `json:"sign_in_per_source"`
	MaxBody            int64         `json:"max_body"`
	RoutesWithoutLimit int           `json:"-"`
}

// AuditHealth is the state of the audit log.
type AuditHealth struct {
	// Verified is set when a full verification ran; VerifyError says why
	// it failed ("" when it passed).
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
	Entries     uint64 `json:"entries"`
	Checkpoints int    `json:"checkpoints"`
	// LatestCheckpoint is the size of the newest checkpoint before the
	// report signed one, and Uncovered the time of the oldest entry it
	// did not cover (zero: it covered every entry).
	LatestCheckpoint   uint64        `json:"latest_checkpoint"`
	Uncovered          time.Time     `json:"oldest_uncovered,omitzero"`
	CheckpointInterval time.Duration `json:"checkpoint_interval"`
}

// Backup is the backup configuration.
type Backup struct {
	RPO       time.Duration `json:"rpo"`
	RTO       time.Duration `json:"rto"`
	Retention time.Duration `json:"retention"`
	Schedule  time.Duration `json:"schedule"`
}

// DayCount is the per-request traffic of one day.
type DayCount struct {
	Day         string `json:"day"` // 2006-01-02
	Requests    int    `json:"requests"`
	Denied      int    `json:"denied"`
	Revocations int    `json:"revocations"`
}

// Finding is the outcome of one check.
type Finding struct {
	Check       string `json:"check"`
	Title       string `json:"title"`
	Status      Status `json:"status"`
	Reason      string `json:"reason"`
	Remediation string `json:"remediation,omitempty"`
	// Provide says what a person must provide to decide a manual check.
	Provide string `json:"provide,omitempty"`
	// Observed is the data the check decided on.
	Observed map[string]any `json:"observed,omitempty"`
	// Evidence cites the audit entries behind the finding, each with its
	// inclusion proof against the report's checkpoint.
	Evidence []Ref `json:"evidence"`

	cites []audit.Entry
}

// cite adds audit entries to the finding's evidence.
func (f *Finding) cite(es ...audit.Entry) { f.cites = append(f.cites, es...) }

// Check is one check of the catalog.
type Check struct {
	ID    string
	Title string
	Run   func(s *State) Finding
}
