//go:build race

package gateway

// raceEnabled: the race detector makes sync.Pool drop items, so pooled
// buffers allocate and allocation budgets do not hold.
const raceEnabled = true
