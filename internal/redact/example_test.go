package redact_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/redact"
)

func ExampleRedactor_String() {
	r := redact.New()
	fmt.Println(r.String(`{"user":"bob","password":"hunter2","card":"4111 1111 1111 1111"}`))
	fmt.Println(r.String("aws key AKIAIOSFODNN7EXAMPLE in a log line"))
	// Output:
	// {"user":"bob","password":"[REDACTED:json_secret]","card":"[REDACTED:card_number]"}
	// aws key [REDACTED:aws_access_key] in a log line
}

func ExampleRedactor_Writer() {
	r := redact.New()
	w := r.Writer(os.Stdout)
	// A token split across two writes is still found.
	io.WriteString(w, "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJz")
	io.WriteString(w, "dWIiOiJhIn0. done\n")
	w.Close()
	// Output:
	// Authorization: Bearer [REDACTED:jwt] done
}

func ExampleRedactor_Reader() {
	r := redact.New()
	body := strings.NewReader("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx\n")
	io.Copy(os.Stdout, r.Reader(body))
	// Output:
	// [REDACTED:slack_token]
}

func ExampleShouldRedact() {
	fmt.Println(redact.ShouldRedact("application/json; charset=utf-8", ""))
	fmt.Println(redact.ShouldRedact("image/png", ""))
	fmt.Println(redact.ShouldRedact("text/plain", "br"))
	// Output:
	// true
	// false
	// false
}
