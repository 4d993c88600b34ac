// Package cputime reads the CPU time the process has used, for benchmarks
// that report CPU per operation (cpu-µs/op): unlike wall time it holds on
// a shared, loaded machine.
package cputime

import (
	"fmt"
	"syscall"
	"time"
)

// Process returns the user and system CPU time the process (every thread,
// the garbage collector's included) has used so far.
func Process() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
