package config

import (
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/internal/backup"
)

// BackupConfig configures encrypted backups, made by serve on a schedule
// and by `gatehouse backup create` (docs/recovery.md). Backups are made
// only when a destination is set: a directory (Dir) or S3-compatible
// object storage (URL: s3://bucket/prefix, with ?endpoint=…&region=…;
// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
type BackupConfig struct {
	Dir string `yaml:"dir"`
	URL string `yaml:"url"`
	// Recipients are the age X25519 recipients (age1…) backups are
	// encrypted to; IdentityFile holds an identity (AGE-SECRET-KEY-1…)
	// that opens them, for restore tests. With no recipients, backups are
	// encrypted to the identity's.
	Recipients   []string `yaml:"recipients"`
	IdentityFile string   `yaml:"identity_file"`
	// Schedule is how often serve makes one (default 1h, the RPO);
	// Retention how long they are kept (default 30d); VerifySchedule how
	// often serve restore-tests the newest (default 720h).
	Schedule       Duration `yaml:"schedule"`
	Retention      Duration `yaml:"retention"`
	VerifySchedule Duration `yaml:"verify_schedule"`
	// RTO and RPO are the recovery targets restore tests are measured
	// against (default 4h and 1h).
	RTO Duration `yaml:"rto"`
	RPO Duration `yaml:"rpo"`
}

// Enabled reports whether backups have a destination.
func (b BackupConfig) Enabled() bool { return b.Dir != "" || b.URL != "" }

func (b *BackupConfig) applyDefaults() {
	for _, d := range []struct {
		f   *Duration
		def time.Duration
	}{
		{&b.Schedule, backup.DefaultSchedule}, {&b.Retention, backup.DefaultRetention},
		{&b.VerifySchedule, backup.DefaultVerifySchedule}, {&b.RTO, backup.DefaultRTO}, {&b.RPO, backup.DefaultRPO},
	} {
		if *d.f == 0 {
			*d.f = Duration(d.def)
		}
	}
}

// validateBackup checks the backup section.
func (c *Config) validateBackup(p *problems) {
	b := &c.Backup
	if b.Dir != "" && b.URL != "" {
		p.add("backup.url", "set dir or url, not both")
	}
	if b.URL != "" {
		if u, err := url.Parse(b.URL); err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil {
			p.add("backup.url", "must be s3://bucket/prefix (credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL)")
		}
	}
	for i, r := range b.Recipients {
		if _, err := backup.ParseRecipients([]string{r}); err != nil {
			p.add(item("backup.recipients", i), "%q is not an age X25519 recipient (age1…, as `gatehouse backup keygen` prints)", r)
		}
	}
	if b.Enabled() && len(b.Recipients) == 0 && b.IdentityFile == "" {
		p.add("backup.recipients", "backups need recipients to encrypt to (or an identity_file to take the recipient from)")
	}
	if b.Schedule < Duration(time.Minute) {
		p.add("backup.schedule", "must be at least 1m")
	} else if b.Retention < b.Schedule {
		p.add("backup.retention", "must be at least the schedule (%s): every backup would be out of retention when made", time.Duration(b.Schedule))
	}
	if b.VerifySchedule < Duration(time.Hour) {
		p.add("backup.verify_schedule", "must be at least 1h")
	}
	if b.RTO <= 0 {
		p.add("backup.rto", "must be positive")
	}
	if b.RPO <= 0 {
		p.add("backup.rpo", "must be positive")
	}
}
