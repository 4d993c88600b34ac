package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// pgCPU measures the CPU time of the PostgreSQL server that conn talks to,
// when it runs on this host: the postmaster's own and reaped children's
// time plus the time of its live children (backends, walwriter,
// checkpointer, autovacuum…), read from /proc. It returns ok false when
// the server is elsewhere (its postmaster is not visible in /proc).
func pgCPU(tb testing.TB, conn *pgx.Conn) (read func() time.Duration, ok bool) {
	tb.Helper()
	var backend int
	if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		tb.Fatal(err)
	}
	st, err := procStat(backend)
	if err != nil {
		return nil, false
	}
	postmaster := st.ppid
	return func() time.Duration {
		pm, err := procStat(postmaster)
		if err != nil {
			tb.Fatalf("read the postmaster's CPU time: %v", err)
		}
		ticks := pm.utime + pm.stime + pm.cutime + pm.cstime
		ents, err := os.ReadDir("/proc")
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if s, err := procStat(pid); err == nil && s.ppid == postmaster {
				ticks += s.utime + s.stime + s.cutime + s.cstime
			}
		}
		return time.Duration(ticks) * time.Second / clockTicks
	}, true
}

type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// procStat reads the parent and the CPU times of a process from
// /proc/PID/stat (fields 4 and 14–17, after the parenthesised command
// name, which may hold spaces).
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	var st stat
	var errs [5]error
	st.ppid, errs[0] = strconv.Atoi(f[1])
	st.utime, errs[1] = strconv.ParseInt(f[11], 10, 64)
	st.stime, errs[2] = strconv.ParseInt(f[12], 10, 64)
	st.cutime, errs[3] = strconv.ParseInt(f[13], 10, 64)
	st.cstime, errs[4] = strconv.ParseInt(f[14], 10, 64)
	for _, err := range errs {
		if err != nil {
			return stat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
		}
	}
	return st, nil
}
