// Command gatehouse is the Gatehouse API gateway and its command-line tool:
// `gatehouse serve` runs the gateway; the other commands talk to a running
// gateway's admin API or work on its data directory offline.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(Run(context.Background(), os.Args[1:], Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
	}))
}
