package password_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
)

// strongPassphrase passes the default policy.
const strongPassphrase = "velvet Otter juggles 7 quiet lanterns"

func TestDefaultPolicy(t *testing.T) {
	p := password.DefaultPolicy()
	want := password.Policy{MinLength: 12, MinStrength: 3, History: 5, MaxAgeDays: 90, ForbidUsername: true, CheckCommon: true}
	if p != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPolicy_JSON(t *testing.T) {
	b, err := json.Marshal(password.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"min_length":12,"min_strength":3,"history":5,"max_age_days":90,"forbid_username":true,"check_common":true}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var p password.Policy
	if err := json.Unmarshal(b, &p); err != nil || p != password.DefaultPolicy() {
		t.Fatalf("round trip = %+v, %v", p, err)
	}
}

func TestPolicy_Validate(t *testing.T) {
	with := func(f func(*password.Policy)) password.Policy {
		p := password.DefaultPolicy()
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    password.Policy
		want string // exact message; "" means valid
	}{
		{"default", password.DefaultPolicy(), ""},
		{"min_length 8", with(func(p *password.Policy) { p.MinLength = 8 }), ""},
		{"everything off", password.Policy{MinLength: 8}, ""},
		{"zero value", password.Policy{}, "password policy: min_length 0 is below the minimum of 8"},
		{"min_length 6", with(func(p *password.Policy) { p.MinLength = 6 }), "password policy: min_length 6 is below the minimum of 8"},
		{"min_length 257", with(func(p *password.Policy) { p.MinLength = 257 }), "password policy: min_length 257 is above the maximum of 256"},
		{"min_strength 5", with(func(p *password.Policy) { p.MinStrength = 5 }), "password policy: min_strength 5 is not between 0 and 4"},
		{"min_strength -1", with(func(p *password.Policy) { p.MinStrength = -1 }), "password policy: min_strength -1 is not between 0 and 4"},
		{"history -1", with(func(p *password.Policy) { p.History = -1 }), "password policy: history -1 is not between 0 and 24"},
		{"history 25", with(func(p *password.Policy) { p.History = 25 }), "password policy: history 25 is not between 0 and 24"},
		{"max_age_days -1", with(func(p *password.Policy) { p.MaxAgeDays = -1 }), "password policy: max_age_days -1 is not between 0 (never expire) and 366"},
		{"max_age_days 400", with(func(p *password.Policy) { p.MaxAgeDays = 400 }), "password policy: max_age_days 400 is not between 0 (never expire) and 366"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			assertInvalid(t, err, tt.want)
		})
	}
}

// assertInvalid fails unless err is an EINVALID *gatehouse.Error with
// exactly the message want (or, when want ends in "…", starting with it).
func assertInvalid(tb testing.TB, err error, want string) {
	tb.Helper()
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		tb.Fatalf("error = %v, want a *gatehouse.Error %q", err, want)
	}
	if ge.Code != gatehouse.EINVALID {
		tb.Errorf("code = %q, want %q", ge.Code, gatehouse.EINVALID)
	}
	if prefix, ok := strings.CutSuffix(want, "…"); ok {
		if !strings.HasPrefix(ge.Message, prefix) {
			tb.Errorf("message = %q, want it to start %q", ge.Message, prefix)
		}
	} else if ge.Message != want {
		tb.Errorf("message = %q, want %q", ge.Message, want)
	}
}

func TestPolicy_Check(t *testing.T) {
	def := password.DefaultPolicy()
	tests := []struct {
		name     string
		policy   password.Policy
		pw, user string
		want     string // "" means accepted
	}{
		{"strong passphrase", def, strongPassphrase, "alice", ""},
		{"strong random", def, "q8#Vr!2mZt@Lp0wX", "alice", ""},
		{"unicode passphrase", def, "schön Bären tanzen über 9 Brücken", "alice", ""},
		{"too short", def, "Xk9#mQ2!", "alice", "password: too short: at least 12 characters"},
		{"empty", def, "", "alice", "password: too short: at least 12 characters"},
		{"short in characters not bytes", def, "ééééééééééé", "alice", "password: too short: at least 12 characters"},
		{"custom min length", password.Policy{MinLength: 20}, strongPassphrase[:19], "alice", "password: too short: at least 20 characters"},
		{"too long", def, strings.Repeat("Zq9!", 65), "alice", "password: too long: at most 256 characters"},
		{"contains username", def, "xX-aliceLiddell-99!", "alice", "password: contains the username"},
		{"contains username any case", def, "Tr0ub4dor&ALICE&3", "Alice", "password: contains the username"},
		{"contains email local part", def, "bobby.tables.Rocks!9", "bobby.tables@example.com", "password: contains the username"},
		{"username rule off", password.Policy{MinLength: 12}, "xX-aliceLiddell-99!", "alice", ""},
		{"short username ignored", def, strongPassphrase, "ot", ""},
		{"common", def, "password1234", "alice", "password: is a commonly used password"},
		{"common any case", def, "PassWord1234", "alice", "password: is a commonly used password"},
		{"common rule off", password.Policy{MinLength: 12}, "password1234", "alice", ""},
		{"keyboard walk", def, "zxcvbnm,./asdfg", "alice", "password: too guessable (strength 2 of 4, need 3): avoid keyboard patterns like qwerty or asdf"},
		{"repeat", def, "abcabcabcabcabc", "alice", "password: too guessable (strength 0 of 4, need 3): avoid repeated characters and words"},
		{"sequence", def, "abcdefghijklmnop", "alice", "password: too guessable (strength 0 of 4, need 3): avoid sequences like abc or 6543"},
		{"word and year", def, "Sunshine2024!", "alice", "password: too guessable (strength 2 of 4, need 3): avoid common passwords and small variations of them"},
		{"name", def, "Aliceliddell", "bob", "password: too guessable (strength 1 of 4, need 3): names and surnames are easy to guess; …"},
		{"strength 3 is enough by default", def, "trombone2019!!", "alice", ""},
		{"strength 4 needed", password.Policy{MinLength: 12, MinStrength: 4}, "trombone2019!!", "alice", "password: too guessable (strength 3 of 4, need 4): …"},
		{"strength rule off", password.Policy{MinLength: 12}, "abcdefghijklmnop", "alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.pw, tt.user, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.pw, err)
				}
				return
			}
			assertInvalid(t, err, tt.want)
		})
	}
}

// TestPolicy_Check_Order checks that the cheapest failing rule is reported
// when several fail.
func TestPolicy_Check_Order(t *testing.T) {
	p := password.DefaultPolicy()
	tests := []struct{ name, pw, user, want string }{
		{"short beats common", "password", "alice", "password: too short: at least 12 characters"},
		{"username beats common", "alice1234567", "alice1234567", "password: contains the username"},
		{"common beats strength", "password1234", "alice", "password: is a commonly used password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertInvalid(t, p.Check(tt.pw, tt.user, nil), tt.want)
		})
	}
}

func TestPolicy_Check_History(t *testing.T) {
	old := []string{"first Pebble orchard 42", "second Pebble orchard 43", "third Pebble orchard 44",
		"fourth Pebble orchard 45", "fifth Pebble orchard 46", "sixth Pebble orchard 47"}
	// previous is newest first: hashes of old[0] (newest) … old[5] (oldest).
	previous := make([]string, len(old))
	for i, pw := range old {
		previous[i] = MustHash(t, pw, cheapParams)
	}
	p := password.DefaultPolicy()
	p.MinStrength = 0 // the history rule is what is under test
	tests := []struct {
		name    string
		history int
		pw      string
		want    string
	}{
		{"newest reused", 5, old[0], "password: same as one of the last 5"},
		{"fifth reused", 5, old[4], "password: same as one of the last 5"},
		{"sixth is beyond history 5", 5, old[5], ""},
		{"history 6 sees the sixth", 6, old[5], "password: same as one of the last 6"},
		{"history 1", 1, old[1], ""},
		{"history off", 0, old[0], ""},
		{"new password", 5, "seventh Pebble orchard 48", ""},
		{"differs only in case", 5, "FIRST Pebble orchard 42", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			p.History = tt.history
			err := p.Check(tt.pw, "alice", previous)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			assertInvalid(t, err, tt.want)
		})
	}
	t.Run("malformed entry", func(t *testing.T) {
		err := p.Check("seventh Pebble orchard 48", "alice", []string{previous[0], "garbage"})
		if !errors.Is(err, password.ErrMalformedHash) {
			t.Fatalf("Check() = %v, want ErrMalformedHash", err)
		}
		if gatehouse.ErrorCode(err) == gatehouse.EINVALID {
			t.Fatal("corrupt stored data must not be reported as the user's fault")
		}
	})
}

func TestPolicy_Expired(t *testing.T) {
	changed := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := gatehouse.NewFakeClock(changed)
	p := password.DefaultPolicy()
	if p.MaxAge() != 90*24*time.Hour {
		t.Fatalf("MaxAge() = %v", p.MaxAge())
	}
	steps := []struct {
		advance time.Duration
		expired bool
	}{
		{0, false},
		{89 * 24 * time.Hour, false},
		{24*time.Hour - time.Second, false},
		{time.Second, true}, // exactly 90 days
		{365 * 24 * time.Hour, true},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if got := p.Expired(changed, clock.Now()); got != s.expired {
			t.Fatalf("Expired at +%v = %v, want %v", clock.Now().Sub(changed), got, s.expired)
		}
	}
	p.MaxAgeDays = 0
	if p.Expired(changed, clock.Now()) {
		t.Fatal("MaxAgeDays 0 must never expire")
	}
}

func BenchmarkCheck(b *testing.B) {
	p := password.DefaultPolicy()
	b.Run("no history", func(b *testing.B) {
		for b.Loop() {
			if err := p.Check(strongPassphrase, "alice", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("weak", func(b *testing.B) {
		for b.Loop() {
			if err := p.Check("Sunshine2024!", "alice", nil); err == nil {
				b.Fatal("accepted")
			}
		}
	})
	b.Run("history 5 default params", func(b *testing.B) {
		prev := make([]string, 5)
		for i := range prev {
			prev[i] = MustHash(b, strongPassphrase+string(rune('a'+i)), password.DefaultParams())
		}
		for b.Loop() {
			if err := p.Check(strongPassphrase, "alice", prev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
	})
}
