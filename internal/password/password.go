// Package password hashes, verifies and vets the passwords of Gatehouse's
// human users.
//
// Hashes are argon2id in PHC string format (Hash, Verify, Decode); Verify
// tells the caller when a stored hash was made with parameters other than the
// current ones so it can rehash at login. A Policy, held in settings, decides
// which new passwords are acceptable: minimum length, not containing the
// username, not on the embedded list of 30,000 common passwords (IsCommon),
// a zxcvbn strength score (Strength), and not one of the last few passwords.
// Every refusal is an EINVALID *gatehouse.Error whose message names the rule
// that failed and is safe to show to the user.
//
// A Hasher runs Hash and Verify under a memory budget (with a short queue,
// then ErrBusy), so that a flood of sign-ins costs bounded memory; servers
// send every argon2id computation through one.
//
// The package writes no logs, holds no package-level mutable state beyond
// the lazily built common-password set, and all of its functions are safe
// for concurrent use.
package password

//go:generate go run ./internal/gencommon -o common.txt

import "github.com/gatehouse/gatehouse"

// invalid returns an EINVALID *gatehouse.Error with a client-safe message.
func invalid(format string, args ...any) error {
	return gatehouse.Errorf(gatehouse.EINVALID, format, args...)
}
