// Package totp implements time-based one-time passwords (RFC 6238) on top of
// HOTP (RFC 4226) for the second factor of Gatehouse's human users: six
// digits, HMAC-SHA-1 and a 30-second step, which is what every authenticator
// app accepts.
//
// Enrolment: GenerateSecret makes a secret, which the caller stores
// (encrypted) with the user, and URI turns it into the otpauth:// URI that
// is shown as a QR code; the user then proves the app works by entering one
// code, checked with Verify.
//
// Replay protection is the caller's job, because it needs storage: Verify
// returns the time step its code matched, and the caller must refuse the
// login when that step is not greater than the last step it accepted for
// the user, and otherwise record it:
//
//	ok, step := totp.Verify(secret, code, clock.Now(), 1)
//	if !ok || step <= user.LastTOTPStep {
//		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid code")
//	}
//	user.LastTOTPStep = step // store it before accepting the login
//
// This also stops a code being used twice within its own 30 seconds. Failed
// codes should count towards the same lockout as failed passwords.
//
// Time always comes from the caller (read it from a gatehouse.Clock), so
// tests can fix it. All functions are safe for concurrent use.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- RFC 6238 TOTP is HMAC-SHA-1 as authenticator apps implement it
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// Digits is the length of a code.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
	// SecretSize is the size in bytes of the secrets GenerateSecret makes
	// (160 bits, as RFC 4226 recommends).
	SecretSize = 20
	// MinSecretSize is the smallest secret accepted (128 bits, RFC 4226 R6).
	MinSecretSize = 16
	// MaxSecretSize is the largest secret accepted.
	MaxSecretSize = 128
	// MaxSkew is the largest skew Verify honours, in steps either side.
	MaxSkew = 10
)

// ErrSecret is returned (wrapped) by Code when a secret is not base32 or not
// between MinSecretSize and MaxSecretSize bytes long.
var ErrSecret = errors.New("totp: malformed secret")

// ErrTime is returned by Code for a time before the Unix epoch.
var ErrTime = errors.New("totp: time before 1970")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// GenerateSecret returns a new random secret of SecretSize bytes, encoded as
// unpadded upper-case base32 (32 characters), the form authenticator apps
// and URI expect.
func GenerateSecret() (string, error) {
	key := make([]byte, SecretSize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("totp secret: %w", err)
	}
	return b32.EncodeToString(key), nil
}

// URI returns the otpauth:// key URI that enrols secret in an authenticator
// app, usually shown as a QR code:
//
//	otpauth://totp/Issuer:account?secret=…&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//
// issuer names the service ("Gatehouse") and account the user; both are
// percent-encoded, colons included. An empty issuer is left out. URI
// contains the secret: never log it.
func URI(issuer, account, secret string) string {
	label := escape(account)
	if issuer != "" {
		label = escape(issuer) + ":" + label
	}
	var sb strings.Builder
	sb.WriteString("otpauth://totp/")
	sb.WriteString(label)
	sb.WriteString("?secret=")
	sb.WriteString(escape(normalize(secret)))
	if issuer != "" {
		sb.WriteString("&issuer=")
		sb.WriteString(escape(issuer))
	}
	sb.WriteString("&algorithm=SHA1&digits=")
	sb.WriteString(strconv.Itoa(Digits))
	sb.WriteString("&period=")
	sb.WriteString(strconv.Itoa(int(Period / time.Second)))
	return sb.String()
}

// escape percent-encodes s for a URI path segment or query value, spaces as
// %20 (which authenticator apps read more reliably than '+').
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// normalize upper-cases a base32 secret and drops spaces, dashes and
// padding, so secrets typed by hand ("jbsw y3dp …") are accepted.
func normalize(secret string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '=':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, secret)
}

func decodeSecret(secret string) ([]byte, error) {
	key, err := b32.DecodeString(normalize(secret))
	if err != nil {
		return nil, fmt.Errorf("%w: not base32", ErrSecret)
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrSecret, len(key), MinSecretSize, MaxSecretSize)
	}
	return key, nil
}

// HOTP returns the RFC 4226 one-time password of Digits digits for key and
// counter, using HMAC-SHA-1 and dynamic truncation.
func HOTP(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	code := bin % 1_000_000 // 10^Digits
	var buf [Digits]byte
	for i := Digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + code%10)
		code /= 10
	}
	return string(buf[:])
}

// Step returns the RFC 6238 time step of t: the number of whole Periods
// since the Unix epoch (negative before 1970).
func Step(t time.Time) int64 {
	s := t.Unix()
	p := int64(Period / time.Second)
	q := s / p
	if s%p != 0 && s < 0 {
		q-- // floor, not truncation, before 1970
	}
	return q
}

// Code returns the code for secret (base32, as GenerateSecret makes) at
// time t. It returns an error wrapping ErrSecret for a malformed secret, and
// ErrTime for a time before 1970.
func Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	step := Step(t)
	if step < 0 {
		return "", ErrTime
	}
	return HOTP(key, uint64(step)), nil
}

// Verify reports whether code is the code for secret at time t, or at up to
// skew steps before or after it to allow for clock drift (skew is clamped
// to 0..MaxSkew; 1 is usual). Every step in the window is computed and
// compared in constant time, so timing reveals neither which step matched
// nor how much of the code was right. When ok, step is the time step that
// matched; the caller must refuse it if it is not greater than the last
// step accepted for this user (see the package documentation). Spaces in
// code are ignored ("123 456"). A malformed secret or code, or a time before
// 1970, yields false.
func Verify(secret, code string, t time.Time, skew int) (ok bool, step int64) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != Digits {
		return false, 0
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false, 0
		}
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return false, 0
	}
	skew = max(0, min(skew, MaxSkew))
	now := Step(t)
	found := 0
	for s := now - int64(skew); s <= now+int64(skew); s++ {
		if s < 0 {
			continue
		}
		eq := subtle.ConstantTimeCompare([]byte(HOTP(key, uint64(s))), []byte(code))
		// Keep the first match without branching on the comparison.
		take := eq &^ found
		step = int64(subtle.ConstantTimeSelect(take, int(s), int(step)))
		found |= eq
	}
	if found == 0 {
		return false, 0
	}
	return true, step
}
