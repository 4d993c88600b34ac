package password_test

import (
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
)

func ExampleHash() {
	enc, err := password.Hash("velvet Otter juggles 7 quiet lanterns", password.DefaultParams())
	if err != nil {
		panic(err)
	}
	fmt.Println(enc[:31])
	// Output: $argon2id$v=19$m=19456,t=2,p=1$
}

func ExampleVerify() {
	old := password.Params{Time: 5, MemoryKiB: 7168, Threads: 1, KeyLen: 32, SaltLen: 16}
	stored, _ := password.Hash("velvet Otter juggles 7 quiet lanterns", old)

	// At login, with the current parameters from settings:
	ok, rehash, err := password.Verify("velvet Otter juggles 7 quiet lanterns", stored, password.DefaultParams())
	fmt.Println(ok, rehash, err)
	if ok && rehash {
		stored, _ = password.Hash("velvet Otter juggles 7 quiet lanterns", password.DefaultParams())
	}
	// Output: true true <nil>
}

func ExamplePolicy_Check() {
	p := password.DefaultPolicy()
	for _, pw := range []string{"hunter2", "alice-in-wonderland", "password1234", "Sunshine2024!", "velvet Otter juggles 7 quiet lanterns"} {
		if err := p.Check(pw, "alice", nil); err != nil {
			fmt.Printf("%q: %s (%s)\n", pw, gatehouse.ErrorMessage(err), gatehouse.ErrorCode(err))
			continue
		}
		fmt.Printf("%q: ok\n", pw)
	}
	// Output:
	// "hunter2": password: too short: at least 12 characters (invalid)
	// "alice-in-wonderland": password: contains the username (invalid)
	// "password1234": password: is a commonly used password (invalid)
	// "Sunshine2024!": password: too guessable (strength 2 of 4, need 3): avoid common passwords and small variations of them (invalid)
	// "velvet Otter juggles 7 quiet lanterns": ok
}

func ExamplePolicy_Validate() {
	p := password.DefaultPolicy()
	p.MinLength = 6
	fmt.Println(p.Validate())
	// Output: invalid: password policy: min_length 6 is below the minimum of 8
}
