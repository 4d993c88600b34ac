// Package store defines where Gatehouse keeps its durable state — API keys
// and settings — as the Store interface. Implementations live in
// subpackages named for their database (store/sqlite).
package store

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Key is a stored API key. The secret itself is never stored: Hash is
// HMAC-SHA-256 of the whole key under the server's pepper.
type Key struct {
	ID          string
	Name        string
	Hash        []byte
	Scopes      []string
	Tier        string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
	RevokedAt   time.Time // zero: not revoked
	RotatedTo   string    // id of the key that replaced this one
	RotatedFrom string    // id of the key this one replaced
}

// Client is a stored OAuth service client. Only the HMAC of its secret is
// stored.
type Client struct {
	ID              string
	Name            string
	SecretHash      []byte
	Scopes          []string
	Tier            string
	CreatedAt       time.Time
	SecretRotatedAt time.Time // zero: never rotated
	RevokedAt       time.Time // zero: not revoked
}

// Store is the durable state of one deployment. Implementations are safe
// for concurrent use. Lookups of missing rows return a *gatehouse.Error with
// code ENOTFOUND.
type Store interface {
	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	// RevokeKey marks the key revoked at t; revoking twice keeps the first time.
	RevokeKey(ctx context.Context, id string, t time.Time) (*Key, error)
	// RotateKey stores next and, in the same transaction, links old to it
	// and sets old's expiry to oldExpiresAt.
	RotateKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next *Key) error

	CreateClient(ctx context.Context, c *Client) error
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]*Client, error)
	// RevokeClient marks the client revoked at t; revoking twice keeps the
	// first time.
	RevokeClient(ctx context.Context, id string, t time.Time) (*Client, error)
	// SetClientSecret replaces the secret hash of an active client.
	SetClientSecret(ctx context.Context, id string, hash []byte, t time.Time) error

	// GetSetting returns the value stored under name, ENOTFOUND if none.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// PutSetting stores value under name.
	PutSetting(ctx context.Context, name string, value []byte) error
	// PutSettingIfAbsent stores value under name unless a value exists, and
	// reports whether it stored it.
	PutSettingIfAbsent(ctx context.Context, name string, value []byte) (bool, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// NotFound returns the ENOTFOUND error for a missing thing.
func NotFound(what, id string) error {
	return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s %q not found", what, id)
}
