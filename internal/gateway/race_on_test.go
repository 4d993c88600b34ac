//go:build race

package gateway_test

// raceEnabled: the race detector changes allocation counts (sync.Pool
// drops items at random), so budgets are checked without it.
const raceEnabled = true
