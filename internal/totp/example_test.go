package totp_test

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/totp"
)

func ExampleURI() {
	fmt.Println(totp.URI("Gatehouse", "alice@example.com", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
	// Output: otpauth://totp/Gatehouse:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30
}

func ExampleVerify() {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	now := time.Unix(1234567890, 0) // from a gatehouse.Clock in real code
	var lastStep int64              // stored with the user

	for _, code := range []string{"005924", "005924", "123456"} {
		ok, step := totp.Verify(secret, code, now, 1)
		switch {
		case !ok:
			fmt.Println(code, "wrong code")
		case step <= lastStep:
			fmt.Println(code, "already used")
		default:
			lastStep = step
			fmt.Println(code, "accepted at step", step)
		}
	}
	// Output:
	// 005924 accepted at step 41152263
	// 005924 already used
	// 123456 wrong code
}
