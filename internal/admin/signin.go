package admin

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
)

// signInMaxKeys bounds the sign-in limiter's memory (about 300 bytes a
// key): beyond it, idle keys and then the least recently used of a sample
// are forgotten, so a flood of made-up usernames costs bounded memory. The
// lockout that protects an account is in the store and is not affected.
const signInMaxKeys = 1 << 16

func newSignInLimiter(clock gatehouse.Clock) *memory.Limiter {
	return memory.New(memory.Config{Clock: clock, Shards: 16, MaxKeys: signInMaxKeys})
}

// limitSignIn admits a sign-in attempt (session or HTTP Basic) within the
// per-source and per-username limits of Settings → Authentication, before
// any password is hashed. A refusal is ERATELIMITED and carries the wait,
// which httpjson.WriteError sends as Retry-After.
func (s *Server) limitSignIn(r *http.Request, username string) error {
	lim := s.cfg.Users.Settings().SignInLimits
	d, err := s.signIn.AllowAll(r.Context(), []ratelimit.Rule{
		{Key: "src|" + s.sourceKey(r), Limit: lim.PerSource},
		{Key: "user|" + strings.ToLower(username), Limit: lim.PerUsername},
	})
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	which := "from this address"
	if d.Rule == 1 {
		which = "for this username"
	}
	return &signInLimited{
		err:   gatehouse.Errorf(gatehouse.ERATELIMITED, "too many sign-in attempts %s: try again in %s", which, retrySeconds(d.RetryAfter)+"s"),
		after: d.RetryAfter,
	}
}

// signInLimited is a sign-in refused by a limit: ERATELIMITED, with the
// wait for the Retry-After header.
type signInLimited struct {
	err   *gatehouse.Error
	after time.Duration
}

func (e *signInLimited) Error() string             { return e.err.Error() }
func (e *signInLimited) Unwrap() error             { return e.err }
func (e *signInLimited) RetryAfter() time.Duration { return e.after }

// sourceAddr is the client address of r (the peer of the admin listener).
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sourceKey is what the per-source limits count r under: its address's
// limit key (an IPv6 client by its network, Config.IPv6Prefix). Audit
// events keep the address (sourceAddr).
func (s *Server) sourceKey(r *http.Request) string {
	return ratelimit.SourceKey(sourceAddr(r), s.cfg.IPv6Prefix)
}

func retrySeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
