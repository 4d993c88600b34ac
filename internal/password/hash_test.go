package password_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
)

// cheapParams are the cheapest parameters Validate accepts (the OWASP
// m=7 MiB, t=5 line); tests use them where the cost does not matter.
var cheapParams = password.Params{Time: 5, MemoryKiB: 7168, Threads: 1, KeyLen: 32, SaltLen: 16}

// MustHash hashes pw with p or fails the test.
func MustHash(tb testing.TB, pw string, p password.Params) string {
	tb.Helper()
	enc, err := password.Hash(pw, p)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return enc
}

func TestDefaultParams(t *testing.T) {
	p := password.DefaultParams()
	want := password.Params{Time: 2, MemoryKiB: 19456, Threads: 1, KeyLen: 32, SaltLen: 16}
	if p != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

func TestParams_Validate(t *testing.T) {
	with := func(f func(*password.Params)) password.Params {
		p := password.DefaultParams()
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    password.Params
		want string // substring of the message; "" means valid
	}{
		{"default", password.DefaultParams(), ""},
		{"owasp m=47104 t=1", with(func(p *password.Params) { p.MemoryKiB, p.Time = 47104, 1 }), ""},
		{"owasp m=7168 t=5", cheapParams, ""},
		{"zero", password.Params{}, "threads"},
		{"zero threads", with(func(p *password.Params) { p.Threads = 0 }), "threads"},
		{"zero time", with(func(p *password.Params) { p.Time = 0 }), "time must be"},
		{"time too high", with(func(p *password.Params) { p.Time = 65 }), "time must be"},
		{"memory below 8 per thread", with(func(p *password.Params) { p.MemoryKiB, p.Threads, p.Time = 30, 4, 64 }), "memory_kib must be"},
		{"memory too high", with(func(p *password.Params) { p.MemoryKiB = 1<<20 + 1 }), "memory_kib must be"},
		{"below owasp floor", with(func(p *password.Params) { p.MemoryKiB, p.Time = 4096, 2 }), "below the OWASP floor"},
		{"short key", with(func(p *password.Params) { p.KeyLen = 8 }), "key_len"},
		{"long key", with(func(p *password.Params) { p.KeyLen = 129 }), "key_len"},
		{"short salt", with(func(p *password.Params) { p.SaltLen = 8 }), "salt_len"},
		{"long salt", with(func(p *password.Params) { p.SaltLen = 129 }), "salt_len"},
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
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			}
			if code := gatehouse.ErrorCode(err); code != gatehouse.EINVALID {
				t.Errorf("code = %q, want %q", code, gatehouse.EINVALID)
			}
			if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.want)
			}
		})
	}
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerify(t *testing.T) {
	p := password.DefaultParams()
	enc := MustHash(t, "correct horse battery staple", p)
	if !phc.MatchString(enc) {
		t.Fatalf("Hash() = %q, not a PHC argon2id string", enc)
	}
	if enc2 := MustHash(t, "correct horse battery staple", p); enc2 == enc {
		t.Fatal("two hashes of the same password are equal: salt is not random")
	}
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapler", false},
		{"case", "Correct horse battery staple", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := password.Verify(tt.pw, enc, p)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || rehash {
				t.Fatalf("Verify() = %v, %v; want %v, false", ok, rehash, tt.ok)
			}
		})
	}
}

func TestHash_InvalidParams(t *testing.T) {
	_, err := password.Hash("pw", password.Params{})
	if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Fatalf("Hash with zero Params: err = %v, want EINVALID", err)
	}
}

func TestVerify_Rehash(t *testing.T) {
	const pw = "tulip-engine-saucer-43"
	old := MustHash(t, pw, cheapParams)
	tests := []struct {
		name    string
		current password.Params
		rehash  bool
	}{
		{"same params", cheapParams, false},
		{"memory and time changed", password.DefaultParams(), true},
		{"threads changed", func() password.Params { p := cheapParams; p.Threads = 2; return p }(), true},
		{"key length changed", func() password.Params { p := cheapParams; p.KeyLen = 64; return p }(), true},
		{"salt length changed", func() password.Params { p := cheapParams; p.SaltLen = 32; return p }(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := password.Verify(pw, old, tt.current)
			if err != nil || !ok || rehash != tt.rehash {
				t.Fatalf("Verify() = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.rehash)
			}
			// A wrong password never asks for a rehash.
			if ok, rehash, _ := password.Verify(pw+"x", old, tt.current); ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	enc := MustHash(t, "pw", cheapParams)
	p, err := password.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if p != cheapParams {
		t.Fatalf("Decode() = %+v, want %+v", p, cheapParams)
	}
}

// malformedHashes are encodings Verify and Decode must refuse without
// panicking. They also seed FuzzVerify.
var malformedHashes = []struct{ name, enc string }{
	{"empty", ""},
	{"dollar only", "$"},
	{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
	{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"no version", "$argon2id$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"missing param", "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"negative time", "$argon2id$v=19$m=19456,t=-2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"plus sign", "$argon2id$v=19$m=+19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"zero threads", "$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"threads overflow", "$argon2id$v=19$m=19456,t=2,p=256$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"memory overflow", "$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"memory too big", "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"time too big", "$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"memory below 8p", "$argon2id$v=19$m=7,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"salt not base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"salt too short", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{"empty key", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"},
	{"key too short", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAA"},
	{"key url base64", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_-"},
	{"trailing field", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$"},
	{"no leading dollar", "argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$"},
	{"plaintext", "hunter2"},
}

func TestVerify_Malformed(t *testing.T) {
	for _, tt := range malformedHashes {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := password.Verify("pw", tt.enc, password.DefaultParams())
			if ok || rehash || !errors.Is(err, password.ErrMalformedHash) {
				t.Fatalf("Verify() = %v, %v, %v; want false, false, ErrMalformedHash", ok, rehash, err)
			}
			if _, err := password.Decode(tt.enc); !errors.Is(err, password.ErrMalformedHash) {
				t.Fatalf("Decode() error = %v, want ErrMalformedHash", err)
			}
		})
	}
}

// FuzzVerify checks that the PHC parser never panics, and that whatever it
// accepts can be verified without panicking.
func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	for _, tt := range malformedHashes {
		f.Add(tt.enc)
	}
	f.Fuzz(func(t *testing.T, enc string) {
		p, err := password.Decode(enc)
		if err != nil {
			if !errors.Is(err, password.ErrMalformedHash) {
				t.Fatalf("Decode error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		if p.Threads < 1 || p.Time < 1 || p.MemoryKiB < 8*uint32(p.Threads) ||
			p.MemoryKiB > password.MaxMemoryKiB || p.Time > password.MaxTime ||
			p.KeyLen < password.MinKeyLen || p.KeyLen > password.MaxKeyLen {
			t.Fatalf("Decode accepted out-of-range %+v", p)
		}
		// Only run argon2 when it is cheap, to keep the fuzzer fast.
		if uint64(p.MemoryKiB)*uint64(p.Time) <= 1024 {
			if _, _, err := password.Verify("pw", enc, password.DefaultParams()); err != nil {
				t.Fatalf("Decode accepted %q but Verify said %v", enc, err)
			}
		}
	})
}

func BenchmarkHash(b *testing.B) {
	p := password.DefaultParams()
	for b.Loop() {
		if _, err := password.Hash("correct horse battery staple", p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
}

func BenchmarkVerify(b *testing.B) {
	p := password.DefaultParams()
	enc := MustHash(b, "correct horse battery staple", p)
	for b.Loop() {
		if ok, _, err := password.Verify("correct horse battery staple", enc, p); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
}
