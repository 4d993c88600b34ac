package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestBackupSection(t *testing.T) {
	bad := []struct{ name, yaml, want string }{
		{"dir and url", "backup:\n  dir: /b\n  url: s3://b/p\n  recipients: [" + recipient + "]\n", "g.yaml:3: backup.url: set dir or url, not both"},
		{"not s3", "backup:\n  url: https://b.example/p\n  recipients: [" + recipient + "]\n", "backup.url: must be s3://bucket/prefix"},
		{"credentials in url", "backup:\n  url: s3://key:secret@b/p\n  recipients: [" + recipient + "]\n", "not the URL"},
		{"bad recipient", "backup:\n  dir: /b\n  recipients:\n    - age1nope\n", `g.yaml:4: backup.recipients[0]: "age1nope" is not an age X25519 recipient`},
		{"no key at all", "backup:\n  dir: /b\n", "backups need recipients"},
		{"schedule too short", "backup:\n  dir: /b\n  recipients: [" + recipient + "]\n  schedule: 10s\n", "backup.schedule: must be at least 1m"},
		{"retention below schedule", "backup:\n  dir: /b\n  recipients: [" + recipient + "]\n  schedule: 6h\n  retention: 1h\n", "backup.retention: must be at least the schedule (6h0m0s)"},
		{"verify too often", "backup:\n  dir: /b\n  recipients: [" + recipient + "]\n  verify_schedule: 1m\n", "backup.verify_schedule: must be at least 1h"},
		{"unknown key", "backup:\n  dirs: /b\n", `g.yaml:2: backup.dirs: unknown key (did you mean "dir"?)`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("g.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	c, err := config.Parse("g.yaml", []byte("backup:\n  dir: /var/backups/gatehouse\n  identity_file: /etc/gatehouse/backup.key\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Backup
	if !b.Enabled() || time.Duration(b.Schedule) != time.Hour || time.Duration(b.Retention) != 30*24*time.Hour ||
		time.Duration(b.VerifySchedule) != 720*time.Hour || time.Duration(b.RTO) != 4*time.Hour || time.Duration(b.RPO) != time.Hour {
		t.Errorf("defaults: %+v", b)
	}
	if d := config.Default(); d.Backup.Enabled() {
		t.Error("backups are on without a destination")
	}
}
