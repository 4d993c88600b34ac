package totp_test

import (
	"encoding/base32"
	"errors"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/totp"
)

// rfcKey is the SHA-1 seed of RFC 4226 appendix D and RFC 6238 appendix B.
const rfcKey = "12345678901234567890"

// rfcSecret is rfcKey in base32.
var rfcSecret = base32.StdEncoding.EncodeToString([]byte(rfcKey))

func TestRFCSecret(t *testing.T) {
	if rfcSecret != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" {
		t.Fatal(rfcSecret)
	}
}

// TestHOTP_RFC4226 checks the HOTP values of RFC 4226 appendix D.
func TestHOTP_RFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, w := range want {
		if got := totp.HOTP([]byte(rfcKey), uint64(counter)); got != w {
			t.Errorf("HOTP(counter %d) = %s, want %s", counter, got, w)
		}
	}
}

// rfc6238 holds the SHA-1 rows of RFC 6238 appendix B. The RFC lists
// 8-digit codes; a 6-digit code is the same value mod 10^6, i.e. its last
// six digits.
var rfc6238 = []struct {
	unix  int64
	step  int64
	code8 string
}{
	{59, 0x1, "94287082"},
	{1111111109, 0x23523EC, "07081804"},
	{1111111111, 0x23523ED, "14050471"},
	{1234567890, 0x273EF07, "89005924"},
	{2000000000, 0x3F940AA, "69279037"},
	{20000000000, 0x27BC86AA, "65353130"},
}

func TestCode_RFC6238(t *testing.T) {
	for _, tt := range rfc6238 {
		t.Run(tt.code8, func(t *testing.T) {
			at := time.Unix(tt.unix, 0).UTC()
			if got := totp.Step(at); got != tt.step {
				t.Errorf("Step(%d) = %#x, want %#x", tt.unix, got, tt.step)
			}
			want := tt.code8[2:]
			got, err := totp.Code(rfcSecret, at)
			if err != nil || got != want {
				t.Fatalf("Code(%d) = %q, %v; want %q", tt.unix, got, err, want)
			}
			ok, step := totp.Verify(rfcSecret, want, at, 0)
			if !ok || step != tt.step {
				t.Fatalf("Verify(%d) = %v, %#x; want true, %#x", tt.unix, ok, step, tt.step)
			}
		})
	}
}

func TestVerify_Skew(t *testing.T) {
	base := time.Unix(1111111111, 0) // step 0x23523ED
	clock := gatehouse.NewFakeClock(base)
	baseStep := totp.Step(base)
	code, err := totp.Code(rfcSecret, base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		offset time.Duration // verifier's clock relative to the code's
		skew   int
		ok     bool
	}{
		{"same step", 0, 0, true},
		{"same step, later in it", 8 * time.Second, 0, true}, // 1111111111 is 21 s into its step
		{"next step, no skew", 30 * time.Second, 0, false},
		{"next step, skew 1", 30 * time.Second, 1, true},
		{"previous step, skew 1", -30 * time.Second, 1, true},
		{"two steps later, skew 1", 60 * time.Second, 1, false},
		{"two steps later, skew 2", 60 * time.Second, 2, true},
		{"negative skew is 0", 30 * time.Second, -3, false},
		{"skew is capped at MaxSkew", 11 * totp.Period, 1000, false},
		{"MaxSkew", 10 * totp.Period, totp.MaxSkew, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gatehouse.NewFakeClock(clock.Now())
			c.Advance(tt.offset)
			ok, step := totp.Verify(rfcSecret, code, c.Now(), tt.skew)
			if ok != tt.ok {
				t.Fatalf("Verify() ok = %v, want %v", ok, tt.ok)
			}
			if ok && step != baseStep {
				t.Fatalf("Verify() step = %d, want the code's step %d", step, baseStep)
			}
			if !ok && step != 0 {
				t.Fatalf("Verify() step = %d on failure, want 0", step)
			}
		})
	}
}

// TestVerify_Replay shows the caller's replay check: a code is accepted once
// per step, and an older step is refused after a newer one.
func TestVerify_Replay(t *testing.T) {
	clock := gatehouse.NewFakeClock(time.Unix(1_800_000_000, 0))
	var last int64 // the caller's stored "last accepted step"
	login := func(code string) bool {
		ok, step := totp.Verify(rfcSecret, code, clock.Now(), 1)
		if !ok || step <= last {
			return false
		}
		last = step
		return true
	}
	c1, _ := totp.Code(rfcSecret, clock.Now())
	if !login(c1) {
		t.Fatal("first use refused")
	}
	if login(c1) {
		t.Fatal("same code accepted twice in its step")
	}
	clock.Advance(totp.Period)
	if login(c1) {
		t.Fatal("previous step's code accepted after it was used")
	}
	c2, _ := totp.Code(rfcSecret, clock.Now())
	if !login(c2) {
		t.Fatal("next step's code refused")
	}
}

func TestVerify_Malformed(t *testing.T) {
	at := time.Unix(59, 0)
	tests := []struct{ name, secret, code string }{
		{"empty code", rfcSecret, ""},
		{"short code", rfcSecret, "28708"},
		{"long code", rfcSecret, "2870820"},
		{"eight digits", rfcSecret, "94287082"},
		{"letters", rfcSecret, "28708a"},
		{"signs", rfcSecret, "+87082"},
		{"unicode digits", rfcSecret, "２８７０８２"},
		{"empty secret", "", "287082"},
		{"secret not base32", "GEZDGNBVGY3TQOJQ!EZDGNBVGY3TQOJQ", "287082"},
		{"secret too short", "GEZDGNBVGY3TQOJQ", "287082"}, // 10 bytes
		{"secret too long", strings.Repeat("GEZDGNBV", 30), "287082"},
		{"wrong code", rfcSecret, "287083"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok, step := totp.Verify(tt.secret, tt.code, at, 1); ok || step != 0 {
				t.Fatalf("Verify() = %v, %d; want false, 0", ok, step)
			}
		})
	}
	if ok, _ := totp.Verify(rfcSecret, "287082", time.Unix(-100, 0), 1); ok {
		t.Fatal("Verify accepted a time before 1970")
	}
}

func TestVerify_Lenient(t *testing.T) {
	at := time.Unix(59, 0)
	tests := []struct{ name, secret, code string }{
		{"spaced code", rfcSecret, "287 082"},
		{"lower-case secret", strings.ToLower(rfcSecret), "287082"},
		{"grouped secret", "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ", "287082"},
		{"padded secret", base32.StdEncoding.EncodeToString([]byte(rfcKey + "x")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == "" {
				var err error
				if code, err = totp.Code(tt.secret, at); err != nil {
					t.Fatal(err)
				}
			}
			if ok, _ := totp.Verify(tt.secret, code, at, 0); !ok {
				t.Fatal("Verify() = false")
			}
		})
	}
}

func TestCode_Errors(t *testing.T) {
	if _, err := totp.Code("not base32!", time.Unix(59, 0)); !errors.Is(err, totp.ErrSecret) {
		t.Errorf("bad secret: err = %v, want ErrSecret", err)
	}
	if _, err := totp.Code(rfcSecret, time.Unix(-1, 0)); !errors.Is(err, totp.ErrTime) {
		t.Errorf("before 1970: err = %v, want ErrTime", err)
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix int64
		want int64
	}{{0, 0}, {29, 0}, {30, 1}, {-1, -1}, {-30, -1}, {-31, -2},
		{math.MaxInt64, math.MaxInt64 / 30}, {math.MinInt64, math.MinInt64/30 - 1}}
	for _, tt := range tests {
		if got := totp.Step(time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("Step(%d) = %d, want %d", tt.unix, got, tt.want)
		}
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := totp.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 || strings.ToUpper(s) != s || strings.Contains(s, "=") {
			t.Fatalf("secret %q is not 32 upper-case unpadded base32 characters", s)
		}
		if seen[s] {
			t.Fatal("duplicate secret")
		}
		seen[s] = true
		code, err := totp.Code(s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := totp.Verify(s, code, time.Now(), 1); !ok {
			t.Fatal("fresh secret does not verify its own code")
		}
	}
}

func TestURI(t *testing.T) {
	tests := []struct {
		name, issuer, account, want string
	}{
		{"plain", "Gatehouse", "alice",
			"otpauth://totp/Gatehouse:alice?secret=" + rfcSecret + "&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30"},
		{"email and spaces", "Gatehouse Prod", "alice@example.com",
			"otpauth://totp/Gatehouse%20Prod:alice%40example.com?secret=" + rfcSecret + "&issuer=Gatehouse%20Prod&algorithm=SHA1&digits=6&period=30"},
		{"colons and ampersands escaped", "A:B&C", "x:y",
			"otpauth://totp/A%3AB%26C:x%3Ay?secret=" + rfcSecret + "&issuer=A%3AB%26C&algorithm=SHA1&digits=6&period=30"},
		{"no issuer", "", "alice",
			"otpauth://totp/alice?secret=" + rfcSecret + "&algorithm=SHA1&digits=6&period=30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := totp.URI(tt.issuer, tt.account, rfcSecret)
			if got != tt.want {
				t.Fatalf("URI() =\n%s\nwant\n%s", got, tt.want)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("secret") != rfcSecret || q.Get("issuer") != tt.issuer || u.Scheme != "otpauth" || u.Host != "totp" {
				t.Fatalf("parsed %+v query %v", u, q)
			}
		})
	}
	// The URI carries the secret in its canonical form.
	if got := totp.URI("G", "a", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq"); !strings.Contains(got, "secret="+rfcSecret+"&") {
		t.Fatalf("URI did not normalise the secret: %s", got)
	}
}

func TestVerify_Concurrent(t *testing.T) {
	at := time.Unix(1234567890, 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, _ := totp.Verify(rfcSecret, "005924", at, 1); !ok {
				t.Error("Verify() = false")
			}
		})
	}
	wg.Wait()
}

func FuzzVerify(f *testing.F) {
	f.Add(rfcSecret, "287082", int64(59), 1)
	f.Add("gezd gnbv", "28 7082", int64(-5), -1)
	f.Add("", "", int64(0), 1000)
	f.Fuzz(func(t *testing.T, secret, code string, unix int64, skew int) {
		ok, step := totp.Verify(secret, code, time.Unix(unix, 0), skew)
		if !ok && step != 0 {
			t.Fatalf("step %d on failure", step)
		}
		if ok {
			now := totp.Step(time.Unix(unix, 0))
			if step < now-totp.MaxSkew || step > now+totp.MaxSkew {
				t.Fatalf("step %d outside the window around %d", step, now)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	at := time.Unix(1234567890, 0)
	for b.Loop() {
		if ok, _ := totp.Verify(rfcSecret, "005924", at, 1); !ok {
			b.Fatal("Verify() = false")
		}
	}
}
