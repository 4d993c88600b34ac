// Command gencommon writes the password package's embedded list of common
// passwords (common.txt) from the "passwords" frequency list of
// github.com/trustelem/zxcvbn (MIT), which is zxcvbn 4.4.2's list of the
// 30,000 most frequent passwords. Entries are lower-cased and deduplicated,
// one a line, most frequent first. Run it with `go generate
// ./internal/password`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/trustelem/zxcvbn/frequency"
)

func main() {
	out := flag.String("o", "common.txt", "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gencommon:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	seen := map[string]bool{}
	for _, pw := range frequency.FrequencyLists["passwords"] {
		pw = strings.ToLower(strings.TrimSpace(pw))
		if pw == "" || seen[pw] {
			continue
		}
		seen[pw] = true
		if _, err := w.WriteString(pw + "\n"); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
